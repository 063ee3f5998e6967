import { Logger, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { KafkaBatchTransport, KafkaProducer, createKafkaClient, ensureTopics } from '@tally/kafka';
import { createLogger } from '@tally/shared';
import { createTestSchema, testKafkaBrokers, uniqueSuffix, waitFor } from '@tally/testing';
import type { Kafka } from 'kafkajs';
import type { Pool } from 'pg';
import { LedgerConfig } from '../../src/config/ledger.config';
import { DEAD_LETTER_PRODUCER, KAFKA_CLIENT, LOGGER, PG_POOL } from '../../src/database/tokens.provider';
import { LedgerProjection } from '@tally/ledger-read-models';
import { ProjectionKafkaController } from '../../src/read-models/projection.kafka.controller';
import { ledgerKafkaTransportProvider } from '../../src/workers/ledger.kafka.transport';
import { AccountStream } from './account-stream.fixtures';
import { migrateReadModels, testConfig, testPool } from './read-model.fixtures';

describe('ProjectionKafkaController on the ledger KafkaBatchTransport (Kafka → read models)', () => {
  let pool: Pool;
  let kafka: Kafka;
  let producer: KafkaProducer;
  let schema: { schema: string; drop: () => Promise<void> };
  const topic = `ledger_events_test_${uniqueSuffix()}`;
  const dlq = `${topic}_dlq`;

  /** The projection controller and the ledger's own transport provider (bindings, WORKERS), as a Nest microservice. */
  async function startProjection(config: LedgerConfig): Promise<{ app: INestApplication; transport: KafkaBatchTransport }> {
    @Module({
      controllers: [ProjectionKafkaController],
      providers: [
        { provide: LedgerConfig, useValue: config },
        { provide: KAFKA_CLIENT, useValue: kafka },
        { provide: PG_POOL, useValue: pool },
        { provide: KafkaProducer, useValue: producer },
        { provide: DEAD_LETTER_PRODUCER, useValue: producer },
        { provide: LOGGER, useValue: createLogger('ledger-test', 'warn') },
        { provide: LedgerProjection, useValue: new LedgerProjection(config.DATABASE_SCHEMA) },
        ledgerKafkaTransportProvider,
      ],
    })
    class ProjectionTestModule {}
    // Connected as main.ts does (bootstrapHttpApp with ledgerMicroservices), without an HTTP listener.
    // abortOnError off: a module that cannot be built fails this test, instead of Nest ending the whole test process.
    const app = await NestFactory.create(ProjectionTestModule, new FastifyAdapter(), { logger: false, abortOnError: false });
    const transport = app.get(KafkaBatchTransport);
    app.connectMicroservice({ strategy: transport });
    await app.init();
    await app.startAllMicroservices();
    return { app, transport };
  }

  beforeAll(async () => {
    Logger.overrideLogger(false);
    pool = testPool();
    schema = await createTestSchema('ledger_projection_consumer');
    await migrateReadModels(schema.schema, true);
    kafka = createKafkaClient({ clientId: 'projection-test', brokers: testKafkaBrokers() });
    await ensureTopics(kafka, [topic, dlq], 2);
    producer = new KafkaProducer(kafka);
  });

  afterAll(async () => {
    await producer.disconnect();
    await pool.end();
    await schema.drop();
  });

  it('projects the topic exactly once, dead-letters envelopes without a stream version, stays off without workers', async () => {
    const config = testConfig(schema.schema, { WORKERS: 'projection', LEDGER_EVENTS_TOPIC: topic, LEDGER_DLQ_TOPIC: dlq, PROJECTION_GROUP: `projections_${uniqueSuffix()}` });
    const alice = new AccountStream('alice');
    const events = [alice.opened(), alice.granted('purchased', '10', 'pack'), alice.usage({ usageId: 'u-1', occurredAt: '2025-03-02T00:00:00Z', lines: [{ model: 'gpt-4o', amount: '1.5' }] })];
    const { streamVersion: _v, ...poison } = alice.usage({ usageId: 'u-2', occurredAt: '2025-03-02T00:01:00Z', lines: [{ model: 'gpt-4o', amount: '2' }] });
    // Published twice (a relay retry): the second copy must change nothing.
    await producer.sendEnvelopes(topic, [...events, poison as typeof events[number], ...events]);

    const idle = await startProjection(testConfig(schema.schema, { WORKERS: 'none', LEDGER_EVENTS_TOPIC: topic, LEDGER_DLQ_TOPIC: dlq }));
    try {
      expect(idle.transport.stats()).toEqual({}); // no consumer without the projection worker
    } finally {
      await idle.app.close();
    }

    const { app, transport } = await startProjection(config);
    try {
      const balance = await waitFor(async () => {
        const { rows } = await pool.query(`SELECT stream_version, available::text FROM "${schema.schema}".balances WHERE account_id = 'alice'`);
        return rows[0]?.stream_version === 3 ? rows[0] : undefined;
      }, 30_000);
      expect(balance).toEqual({ stream_version: 3, available: '8500000' });
      const counts = await pool.query(`SELECT (SELECT count(*) FROM "${schema.schema}".ledger_transactions)::int AS t,
                                              (SELECT count(*) FROM "${schema.schema}".usage_records)::int AS u`);
      expect(counts.rows[0]).toEqual({ t: 2, u: 1 });
      const admin = kafka.admin();
      await admin.connect();
      try {
        const dead = await waitFor(async () => {
          const offsets = await admin.fetchTopicOffsets(dlq);
          const total = offsets.reduce((sum, p) => sum + Number(p.high), 0);
          return total > 0 ? total : undefined;
        }, 30_000);
        expect(dead).toBe(1);
      } finally {
        await admin.disconnect();
      }
      expect(() => transport.checkFlowing('projection-consumer')).not.toThrow();
    } finally {
      await app.close();
    }
  });
});

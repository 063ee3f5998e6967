import { Logger } from '@nestjs/common';
import { KafkaProducer, createKafkaClient, ensureTopics } from '@tally/kafka';
import { createTestSchema, testKafkaBrokers, uniqueSuffix, waitFor } from '@tally/testing';
import type { Kafka } from 'kafkajs';
import type { Pool } from 'pg';
import { LedgerProjection } from '../../src/read-models/ledger.projection';
import { ProjectionConsumer } from '../../src/read-models/projection.consumer';
import { AccountStream } from './envelopes';
import { migrateReadModels, testConfig, testPool } from './read-model.fixtures';

describe('ProjectionConsumer (Kafka → read models)', () => {
  let pool: Pool;
  let kafka: Kafka;
  let producer: KafkaProducer;
  let schema: { schema: string; drop: () => Promise<void> };
  const topic = `ledger_events_test_${uniqueSuffix()}`;
  const dlq = `${topic}_dlq`;

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

    const idle = new ProjectionConsumer(pool, kafka, producer, testConfig(schema.schema, { WORKERS: 'none' }), new LedgerProjection(schema.schema));
    await idle.onApplicationBootstrap();
    expect(idle.health()).toBeUndefined();

    const consumer = new ProjectionConsumer(pool, kafka, producer, config, new LedgerProjection(schema.schema));
    await consumer.onApplicationBootstrap();
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
    } finally {
      await consumer.onApplicationShutdown();
    }
  });
});

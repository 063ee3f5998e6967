import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'pg';
import type { ParsedMessage } from '@tally/contracts';
import { BatchConsumer, KafkaProducer, createKafkaClient, ensureOffsetsTable, ensureTopics, quoteSchema } from '../src';
import { countApplied, createAppliedTable, deleteKafkaResources, insertApplied, parseUsage, uniqueSuffix, usageEnvelope, waitFor } from './kafka.harness';

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tally_test';

/**
 * A transaction may run as long as PostgreSQL's query timeout allows (PG_QUERY_TIMEOUT_MS, up to 90 s) while the
 * group's session times out after 30 s without a heartbeat. kafkajs heartbeats only between batches (or when the
 * handler asks), so a batch slower than the session had its member evicted: the group rebalanced, every member
 * stopped to rejoin, and on a database slow enough to make every batch that long it never settled. The consumer now
 * keeps its membership alive while a transaction runs, without waiting on the coordinator inside the transaction.
 * Real Kafka and PostgreSQL; the session shortened to the broker's least (6 s).
 * The wait is the handler's, in the transaction: what a slow statement would take.
 */
describe('a consumer whose transaction outlasts the group session', () => {
  const suffix = uniqueSuffix();
  const schema = `long_tx_${suffix}`;
  const topic = `it.long-tx.${suffix}`;
  const groupId = `it-long-tx-${suffix}`;
  const kafka = createKafkaClient({ clientId: `long-tx-${suffix}`, brokers });
  const pool = new Pool({ connectionString: databaseUrl, max: 4 });
  const producer = new KafkaProducer(kafka);

  beforeAll(async () => {
    await ensureOffsetsTable(pool, schema);
    await createAppliedTable(pool, schema);
    await ensureTopics(kafka, [topic], 1);
  }, 60_000);

  afterAll(async () => {
    await producer.disconnect();
    await deleteKafkaResources(kafka, [topic], [groupId]);
    await pool.query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
    await pool.end();
  });

  it('stays in its group: no rebalance, and the next batch is applied by the same membership', async () => {
    let batches = 0;
    const consumer = new BatchConsumer<ParsedMessage>({
      kafka,
      groupId,
      topics: [topic],
      pool,
      offsetsSchema: schema,
      deadLetterTopic: () => undefined,
      producer,
      parse: parseUsage,
      sessionTimeoutMs: 6_000,
      rebalanceTimeoutMs: 10_000,
      heartbeatIntervalMs: 500,
      fromBeginning: true,
      handle: async ({ topic: consumed, partition, messages, tx }) => {
        batches += 1;
        await insertApplied(tx, schema, consumed, partition, messages);
        // The first transaction outlasts the session more than twice over (PostgreSQL slow under load): this broker
        // evicted a member whose heartbeats had stopped for 14 s, not yet after 9 s.
        if (batches === 1) await sleep(14_000);
      },
    });
    await producer.send(topic, [{ key: 'acct-1', value: JSON.stringify(usageEnvelope('u-1', 'acct-1')) }]);
    await consumer.start();
    try {
      await waitFor(async () => (await countApplied(pool, schema, topic)).rows === 1, 40_000, 'the slow batch committed');
      await producer.send(topic, [{ key: 'acct-1', value: JSON.stringify(usageEnvelope('u-2', 'acct-1')) }]);
      await waitFor(async () => (await countApplied(pool, schema, topic)).rows === 2, 40_000, 'the next batch committed');
      expect(await countApplied(pool, schema, topic)).toEqual({ rows: 2, distinct: 2 });
      expect(consumer.stats().groupJoins).toBe(1);
    } finally {
      await consumer.stop();
    }
  }, 120_000);
});

import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'pg';
import type { ParsedMessage } from '@tally/contracts';
import { startPrivateKafka, testDatabaseUrl, uniqueSuffix, type PrivateKafka } from '@tally/testing';
import { BatchConsumer, KafkaProducer, createKafkaClient, ensureOffsetsTable, ensureTopics, quoteSchema } from '../src';
import { countApplied, createAppliedTable, insertApplied, parseUsage, usageEnvelope, waitFor } from './kafka.harness';

/**
 * A consumer's transaction holds the rows its handler locked (the ledger: the stream row of every account in the
 * batch) until it commits; so does its open transaction id, which holds back the ledger relay's tail for every account.
 * It heartbeat the group's coordinator inside that transaction, just before the COMMIT: a coordinator that did not
 * answer (a broker's pause, a restart, a network fault) kept the rows locked for up to the request timeout (30 s),
 * and holds, grants and releases on those accounts waited as long. The database's offset row already fences a
 * consumer that lost its partition, so the commit needs no word from Kafka. Real PostgreSQL and a broker of its own.
 */
describe('a consumer committing while its group coordinator does not answer', () => {
  let broker: PrivateKafka | undefined;
  const suffix = uniqueSuffix();
  const schema = `commit_unlocked_${suffix}`;
  const pool = new Pool({ connectionString: testDatabaseUrl(), max: 4 });

  beforeAll(async () => {
    broker = await startPrivateKafka();
    await ensureOffsetsTable(pool, schema);
    await createAppliedTable(pool, schema);
    await pool.query(`CREATE TABLE ${quoteSchema(schema)}.streams (id text PRIMARY KEY)`);
    await pool.query(`INSERT INTO ${quoteSchema(schema)}.streams VALUES ('acct-1')`);
  }, 90_000);

  afterAll(async () => {
    broker?.resume();
    await broker?.destroy();
    await pool.query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
    await pool.end();
  });

  it('commits without waiting for it: the rows its batch locked are free while the broker is still frozen', async () => {
    if (!broker) throw new Error('no broker');
    const paused = broker;
    const topic = `t.${suffix}.commit-unlocked`;
    const kafka = createKafkaClient({ clientId: `commit-unlocked-${suffix}`, brokers: [paused.broker] });
    await ensureTopics(kafka, [topic], 1);
    const producer = new KafkaProducer(kafka);
    await producer.send(topic, [{ key: 'acct-1', value: JSON.stringify(usageEnvelope('u-1', 'acct-1')) }]);
    let handled = false;
    const consumer = new BatchConsumer<ParsedMessage>({
      kafka,
      groupId: `commit-unlocked-${suffix}`,
      topics: [topic],
      pool,
      offsetsSchema: schema,
      deadLetterTopic: () => undefined,
      producer,
      parse: parseUsage,
      heartbeatIntervalMs: 100,
      fromBeginning: true,
      handle: async ({ topic: consumed, partition, messages, tx }) => {
        await tx.query(`SELECT id FROM ${quoteSchema(schema)}.streams WHERE id = 'acct-1' FOR UPDATE`);
        await insertApplied(tx, schema, consumed, partition, messages);
        paused.pause(); // the coordinator stops answering while the batch is being decided
        await sleep(300); // a heartbeat is due by the time the batch is ready to commit
        handled = true;
      },
    });
    await consumer.start();
    const locked = async () => pool.query(`SELECT id FROM ${quoteSchema(schema)}.streams WHERE id = 'acct-1' FOR UPDATE NOWAIT`).then(() => false, () => true);
    try {
      await waitFor(async () => handled, 30_000, 'the batch decided');
      await waitFor(async () => !(await locked()), 10_000, "the batch's rows given back with the broker frozen");
      expect(await countApplied(pool, schema, topic)).toEqual({ rows: 1, distinct: 1 });
    } finally {
      paused.resume();
      await consumer.stop();
      await producer.disconnect();
    }
  }, 120_000);
});

import { Pool } from 'pg';
import { type ParsedMessage } from '@tally/contracts';
import { NotReadyError } from '@tally/shared';
import { startPrivateKafka, testDatabaseUrl, testKafkaBrokers, uniqueSuffix, waitFor, type PrivateKafka } from '@tally/testing';
import type { Consumer, Kafka } from 'kafkajs';
import { BatchConsumer, KafkaProducer, createKafkaClient, ensureOffsetsTable, ensureTopics, quoteSchema, withAdmin, type BatchConsumerOptions } from '../src';
import { countApplied, createAppliedTable, insertApplied, parseUsage, usageEnvelope } from './kafka.harness';

/** A consumer of `topic` that applies nothing, and its producer (the test disconnects it: one left connected keeps jest from exiting). */
function idleConsumer(kafka: Kafka, topic: string, pool: Pool, schema: string, options: Partial<BatchConsumerOptions<ParsedMessage>>) {
  const producer = new KafkaProducer(kafka);
  const consumer = new BatchConsumer<ParsedMessage>({
    kafka,
    groupId: `idle-${uniqueSuffix()}`,
    topics: [topic],
    pool,
    offsetsSchema: schema,
    deadLetterTopic: () => undefined,
    producer,
    parse: parseUsage,
    handle: async () => undefined,
    ...options,
  });
  return { producer, consumer };
}

/** Resolves once the consumer's own kafkajs client has sent `count` more Metadata requests. */
function metadataRequests(consumer: BatchConsumer<ParsedMessage>, count: number): Promise<void> {
  const kafkajs = (consumer as unknown as { consumer: Consumer }).consumer; // private: the test watches its requests
  return new Promise((resolve) => {
    let seen = 0;
    const stop = kafkajs.on(kafkajs.events.REQUEST, ({ payload }) => {
      if (payload.apiName !== 'Metadata' || ++seen < count) return;
      stop();
      resolve();
    });
  });
}

/**
 * A consumer whose group cannot be joined while the broker answers everything else (a cluster whose offsets topic
 * needs 3 replicas on 1 broker: no group coordinator ever comes up) consumes nothing: readiness must say so, and why,
 * though the broker's own health probe (metadata) answers. kafkajs gives up on this one (no restart); a crash it
 * restarts from again and again (a coordinator unreachable in a cluster of several brokers) is not reproduced here.
 */
describe('a consumer whose group coordinator never comes up', () => {
  let broker: PrivateKafka | undefined;
  const schema = `no_coordinator_${uniqueSuffix()}`;
  const pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });

  beforeAll(async () => {
    broker = await startPrivateKafka({ properties: ['offsets.topic.replication.factor=3'] });
    await ensureOffsetsTable(pool, schema);
  }, 90_000);

  afterAll(async () => {
    await broker?.destroy();
    await pool.query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
    await pool.end();
  });

  it('is not ready, naming the crash, while the broker answers metadata', async () => {
    if (!broker) throw new Error('no broker');
    const topic = `t.${uniqueSuffix()}.no-coordinator`;
    const kafka = createKafkaClient({ clientId: `no-coordinator-${uniqueSuffix()}`, brokers: [broker.broker], retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 } });
    await ensureTopics(kafka, [topic], 1);
    const { producer, consumer } = idleConsumer(kafka, topic, pool, schema, { stall: { afterAttempts: 3, afterMs: 5_000 } });
    const started = consumer.start().catch((error: unknown) => error);
    try {
      const reason = await waitFor(() => {
        try {
          consumer.checkFlowing();
          return undefined;
        } catch (error) {
          return error;
        }
      }, 60_000, 200);
      expect(reason).toBeInstanceOf(NotReadyError);
      expect((reason as Error).message).toMatch(/crashed: .*coordinator/i);
    } finally {
      await consumer.stop().catch(() => undefined);
      await started;
      await producer.disconnect(); // a producer left connected keeps jest from exiting
    }
  }, 120_000);
});

/**
 * A topic deleted under a running consumer (an operator's mistake, a cleanup script): kafkajs keeps fetching it without
 * a crash or an error the consumer sees, consuming nothing, while the broker answers. Readiness said ready.
 */
describe('a consumer whose topic was deleted under it', () => {
  const schema = `topic_gone_${uniqueSuffix()}`;
  const pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });

  beforeAll(async () => {
    await ensureOffsetsTable(pool, schema);
  });

  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
    await pool.end();
  });

  it('is not ready, naming the topic', async () => {
    const topic = `t.${uniqueSuffix()}.topic-gone`;
    const kafka = createKafkaClient({ clientId: `topic-gone-${uniqueSuffix()}`, brokers: testKafkaBrokers() });
    await ensureTopics(kafka, [topic], 1);
    const { producer, consumer } = idleConsumer(kafka, topic, pool, schema, { sessionTimeoutMs: 6_000, rebalanceTimeoutMs: 10_000 });
    await consumer.start();
    try {
      await consumer.health();
      await withAdmin(kafka, (admin) => admin.deleteTopics({ topics: [topic] }));
      // The consumer asks the broker about the topic again (its fetches fail): a broker that creates topics on demand,
      // as this one does, made it anew, empty, and readiness said ready again.
      await metadataRequests(consumer, 2);
      expect(await withAdmin(kafka, async (admin) => (await admin.listTopics()).includes(topic))).toBe(false);
      const refused = await consumer.health().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(NotReadyError);
      expect((refused as NotReadyError).message).toContain(`topic ${topic} does not exist`);
      expect((refused as NotReadyError).details).toEqual({ missingTopics: [topic] });
    } finally {
      await consumer.stop().catch(() => undefined);
      await producer.disconnect(); // a producer left connected keeps jest from exiting
    }
  }, 120_000);
});

/**
 * A new cluster at the broker's address under a running consumer (the broker re-provisioned: data wiped, storage
 * formatted anew, topics created again). Its offsets start from 0 again; the offsets PostgreSQL stored belong to the
 * old cluster. The consumer read the cluster's id once, at start, so it took the new cluster's messages for
 * redeliveries of the old one's (offsets at or below the stored one) and skipped them: never applied, nothing shown.
 */
describe('a consumer whose broker is replaced by a new cluster at the same address', () => {
  let broker: PrivateKafka | undefined;
  const schema = `new_cluster_${uniqueSuffix()}`;
  const pool = new Pool({ connectionString: testDatabaseUrl(), max: 4 });

  beforeAll(async () => {
    broker = await startPrivateKafka();
    await ensureOffsetsTable(pool, schema);
    await createAppliedTable(pool, schema);
  }, 90_000);

  afterAll(async () => {
    await broker?.destroy();
    await pool.query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
    await pool.end();
  });

  it('applies the new cluster\'s messages from its first offset', async () => {
    if (!broker) throw new Error('no broker');
    const topic = `t.${uniqueSuffix()}.replaced`;
    const kafka = createKafkaClient({ clientId: `replaced-${uniqueSuffix()}`, brokers: [broker.broker], retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 1_000 } });
    await ensureTopics(kafka, [topic], 1);
    const { producer, consumer } = idleConsumer(kafka, topic, pool, schema, {
      handle: async ({ topic: t, partition, messages, tx }) => insertApplied(tx, schema, t, partition, messages),
      sessionTimeoutMs: 6_000,
      rebalanceTimeoutMs: 10_000,
    });
    const sender = new KafkaProducer(kafka);
    await consumer.start();
    try {
      await sender.sendEnvelopes(topic, Array.from({ length: 5 }, (_, i) => usageEnvelope(`old-${i}`, 'acct-replaced')));
      await waitFor(async () => (await countApplied(pool, schema, topic)).rows >= 5 || undefined, 30_000, 200);

      await broker.replaceCluster();
      await ensureTopics(kafka, [topic], 1);
      await sender.sendEnvelopes(topic, Array.from({ length: 3 }, (_, i) => usageEnvelope(`new-${i}`, 'acct-replaced')));

      await waitFor(async () => (await countApplied(pool, schema, topic)).rows >= 8 || undefined, 90_000, 500);
      expect(await countApplied(pool, schema, topic)).toEqual({ rows: 8, distinct: 8 });
    } finally {
      await consumer.stop().catch(() => undefined);
      await sender.disconnect();
      await producer.disconnect();
    }
  }, 180_000);
});

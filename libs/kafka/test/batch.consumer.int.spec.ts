import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { KafkaMessage } from 'kafkajs';
import { Pool } from 'pg';
import { ContractViolation, type ParsedMessage } from '@tally/contracts';
import { createServicePool } from '@tally/shared';
import { metricsRegistry, parsePrometheusText, samplesOf } from '@tally/metrics';
import {
  BatchConsumer, DEAD_LETTER_SUFFIX, DeadLetterHeaders, KafkaProducer, REPLAY_FOR_GROUP_HEADER, createKafkaClient, ensureOffsetsTable, ensureTopics, kafkaHealth, keyPartitioner,
  quoteSchema, readStoredOffsets, withAdmin, type BatchConsumerOptions, type KafkaLogger,
} from '../src';
import {
  countApplied, createAppliedTable, deleteKafkaResources, highWatermarks, insertApplied, kafkaCommitted, parseUsage,
  readMessages, uniqueSuffix, usageEnvelope, waitFor,
} from './kafka.harness';

const header = (message: KafkaMessage | undefined, name: string): string | undefined => message?.headers?.[name]?.toString();

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tally_test';
const ROOT = resolve(__dirname, '../../..');

const suffix = uniqueSuffix();
const schema = `kafka_it_${suffix}`;
const kafka = createKafkaClient({ clientId: `kafka-it-${suffix}`, brokers });
const pool = new Pool({ connectionString: databaseUrl, max: 6 });
const producer = new KafkaProducer(kafka);
const topics: string[] = [];
const groups: string[] = [];
const running: BatchConsumer<ParsedMessage>[] = [];

/** A topic + its dead-letter topic + a group, all unique, registered for cleanup. */
async function scenario(name: string, partitions: number, deadLetterSuffix = '.dlq') {
  const topic = `it.${name}.${suffix}`;
  const deadLetterTopic = `${topic}${deadLetterSuffix}`;
  const groupId = `it-${name}-${suffix}`;
  await ensureTopics(kafka, [topic, deadLetterTopic], partitions);
  topics.push(topic, deadLetterTopic);
  groups.push(groupId);
  return { topic, deadLetterTopic, groupId };
}

/**
 * Every message the topic holds has been taken: the offset stored with the effects is each partition's last. A
 * message applied twice would have been applied before that, so the counts read after it are final.
 */
async function caughtUp(s: { topic: string; groupId: string }): Promise<void> {
  await waitFor(async () => {
    const high = await highWatermarks(kafka, s.topic);
    const stored = await readStoredOffsets(pool, schema, s.groupId, s.topic);
    return [...high].every(([partition, next]) => next === 0 || stored.get(partition) === BigInt(next - 1));
  }, 30_000, 'stored offsets at the end of every partition');
}

function consumerFor(
  s: { topic: string; deadLetterTopic: string; groupId: string },
  overrides: Partial<BatchConsumerOptions<ParsedMessage>> = {},
): BatchConsumer<ParsedMessage> {
  const consumer = new BatchConsumer<ParsedMessage>({
    kafka,
    groupId: s.groupId,
    topics: [s.topic],
    pool,
    offsetsSchema: schema,
    deadLetterTopic: () => s.deadLetterTopic,
    producer,
    parse: parseUsage,
    handle: ({ topic, partition, messages, tx }) => insertApplied(tx, schema, topic, partition, messages),
    retry: { retries: 5, minTimeoutMs: 50, maxTimeoutMs: 400 },
    sessionTimeoutMs: 6_000,
    rebalanceTimeoutMs: 10_000,
    ...overrides,
  });
  running.push(consumer);
  return consumer;
}

/** Readiness as the service's /health/ready sees it: the consumer's own check throws when it is not flowing. */
function notReady(consumer: BatchConsumer<ParsedMessage>): boolean {
  try {
    consumer.checkFlowing();
    return false;
  } catch {
    return true;
  }
}

async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map((consumer) => consumer.stop().catch(() => undefined)));
}

beforeAll(async () => {
  await ensureOffsetsTable(pool, schema);
  await ensureOffsetsTable(pool, schema); // idempotent
  await createAppliedTable(pool, schema);
  await producer.connect();
});

afterEach(stopAll);

afterAll(async () => {
  await stopAll();
  await producer.disconnect();
  await deleteKafkaResources(kafka, topics, groups);
  await pool.query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
  await pool.end();
});

describe('BatchConsumer on the real broker and PostgreSQL', () => {
  it('applies N messages exactly once, storing each partition offset in the same transaction', async () => {
    const s = await scenario('apply', 3);
    const n = 30;
    await producer.sendEnvelopes(s.topic, Array.from({ length: n }, (_, i) => usageEnvelope(`u-${i}`, `acct-${i % 7}`)));
    const consumer = consumerFor(s);
    await consumer.start();
    await consumer.health();

    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= n, 30_000, 'rows');
    // Offsets are stored in the same transaction as the rows, so once the rows are there the offsets are too.
    const high = await highWatermarks(kafka, s.topic);
    const stored = await readStoredOffsets(pool, schema, s.groupId, s.topic);
    for (const [partition, next] of high) {
      if (next > 0) expect(stored.get(partition)).toBe(BigInt(next - 1));
    }
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: n, distinct: n });
    expect(consumer.stats()).toMatchObject({ applied: n, deadLettered: 0, skippedRedeliveries: 0 });
  });

  // A transaction may run as long as PostgreSQL's query timeout allows (PG_QUERY_TIMEOUT_MS, up to 90 s) while the
  // group's session times out after 30 s without a heartbeat. kafkajs heartbeats only between batches (or when the
  // handler asks), so a batch slower than the session had its member evicted: the group rebalanced, every member
  // stopped to rejoin, and on a database slow enough to make every batch that long it never settled. The consumer
  // keeps its membership alive while a transaction runs, without waiting on the coordinator inside the transaction.
  // The session here is the broker's least (6 s); this broker evicted a member silent for 14 s, not yet after 9 s.
  it('stays in its group through a transaction longer than the session: no rebalance, the next batch by the same membership', async () => {
    const s = await scenario('long-tx', 1);
    let batches = 0;
    const consumer = consumerFor(s, {
      heartbeatIntervalMs: 500,
      handle: async ({ topic, partition, messages, tx }) => {
        batches += 1;
        await insertApplied(tx, schema, topic, partition, messages);
        if (batches === 1) await sleep(14_000); // PostgreSQL slow under load: the transaction outlasts the session
      },
    });
    await producer.sendEnvelopes(s.topic, [usageEnvelope('long-1', 'acct-l')]);
    await consumer.start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows === 1, 40_000, 'the slow batch committed');
    await producer.sendEnvelopes(s.topic, [usageEnvelope('long-2', 'acct-l')]);
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows === 2, 40_000, 'the next batch committed');
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 2, distinct: 2 });
    expect(consumer.stats().groupJoins).toBe(1);
  }, 120_000);

  // A dead letter names the group that failed it (x-consumer-group); replayed to its source topic, every group reading
  // that topic got it again. ledger.events.v1 is read by the projection and by notification: a projection's dead
  // letter replayed after notification's dedupe rows were purged (90 days) sent its low-credit email again. The replay
  // names the group (x-replay-for-group); the other groups pass over it, and move their offset past it.
  it('passes over a replayed message meant for another group, and applies one meant for itself', async () => {
    const s = await scenario('replay-group', 1);
    const other = { ...s, groupId: `${s.groupId}-other` };
    groups.push(other.groupId);
    await producer.send(s.topic, [
      { key: 'acct-r', value: JSON.stringify(usageEnvelope('r-1', 'acct-r')) },
      { key: 'acct-r', value: JSON.stringify(usageEnvelope('r-2', 'acct-r')), headers: { [REPLAY_FOR_GROUP_HEADER]: s.groupId } },
      { key: 'acct-r', value: JSON.stringify(usageEnvelope('r-3', 'acct-r')) },
    ]);
    const mine = consumerFor(s, { passOverOtherGroupsReplays: true });
    const theirs = consumerFor(other, { passOverOtherGroupsReplays: true, handle: ({ topic, partition, messages, tx }) => insertApplied(tx, schema, `${topic}#other`, partition, messages) });
    await mine.start();
    await theirs.start();
    await waitFor(async () => (await readStoredOffsets(pool, schema, other.groupId, s.topic)).get(0) === 2n && (await countApplied(pool, schema, s.topic)).rows === 3, 30_000, 'both groups at the end');
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 3, distinct: 3 });
    const theirRows = await pool.query<{ message_id: string }>(`SELECT message_id FROM ${quoteSchema(schema)}.applied WHERE topic = $1 ORDER BY kafka_offset`, [`${s.topic}#other`]);
    expect(theirRows.rows.map((row) => row.message_id)).toEqual(['r-1', 'r-3']);
    expect(theirs.stats()).toMatchObject({ applied: 2, skippedForOtherGroups: 1 });
  });

  // On a topic a product writes (its own usage topic), the header is the producer's to set: honoured, a product would
  // have its own usage passed over, never charged. Only consumers told their topics' writers are all trusted honour it.
  it('applies a message naming another group in x-replay-for-group where it was not told to pass over replays', async () => {
    const s = await scenario('replay-forged', 1);
    await producer.send(s.topic, [{ key: 'acct-f', value: JSON.stringify(usageEnvelope('forged-1', 'acct-f')), headers: { [REPLAY_FOR_GROUP_HEADER]: 'some-other-group' } }]);
    const consumer = consumerFor(s);
    await consumer.start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows === 1, 30_000, 'the message applied');
    expect(consumer.stats()).toMatchObject({ applied: 1, skippedForOtherGroups: 0 });
  });

  it('does not trust offsets stored for another Kafka cluster (a recreated broker next to an old database)', async () => {
    const s = await scenario('fence', 1);
    // As if an earlier cluster had taken this group far beyond anything the new topic holds.
    await pool.query(
      `INSERT INTO ${quoteSchema(schema)}.kafka_consumer_offsets (group_id, topic, partition, committed_offset, cluster_id) VALUES ($1, $2, 0, 999, 'an-old-cluster')`,
      [s.groupId, s.topic],
    );
    await producer.sendEnvelopes(s.topic, [usageEnvelope('after-rebuild-1', 'acct-f'), usageEnvelope('after-rebuild-2', 'acct-f')]);
    const consumer = consumerFor(s);
    await consumer.start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= 2, 30_000, 'rows');
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 2, distinct: 2 });
    expect((await readStoredOffsets(pool, schema, s.groupId, s.topic)).get(0)).toBe(1n);
  });

  // The same cluster, but the topic deleted and created again (or the broker's storage lost with its cluster id
  // kept): its log starts at 0 again, below what PostgreSQL says was applied. Its messages were skipped as
  // redeliveries, in silence, ready all along: days of usage never charged. Now the partition stops, in readiness.
  it('does not skip a log that ends before the stored offset (a recreated topic) as redelivered: it shows in readiness', async () => {
    const s = await scenario('recreated', 1);
    const clusterId = await withAdmin(kafka, async (admin) => (await admin.describeCluster()).clusterId);
    await pool.query(
      `INSERT INTO ${quoteSchema(schema)}.kafka_consumer_offsets (group_id, topic, partition, committed_offset, cluster_id) VALUES ($1, $2, 0, 999, $3)`,
      [s.groupId, s.topic, clusterId],
    );
    await producer.sendEnvelopes(s.topic, [usageEnvelope('after-recreate-1', 'acct-r'), usageEnvelope('after-recreate-2', 'acct-r')]);
    const consumer = consumerFor(s, { stall: { afterAttempts: 2, afterMs: 60_000 } });
    await consumer.start();
    await waitFor(async () => notReady(consumer), 30_000, 'readiness to show the partition whose log is behind its stored offset');
    let problem = '';
    try {
      consumer.checkFlowing();
    } catch (error) {
      problem = (error as Error).message;
    }
    expect(problem).toContain('999');
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 0, distinct: 0 });
    expect(consumer.stats().skippedRedeliveries).toBe(0);
    expect((await readStoredOffsets(pool, schema, s.groupId, s.topic)).get(0)).toBe(999n);
  }, 60_000);

  it('resumes from the offset stored in PostgreSQL when Kafka committed further (a database restored or failed over behind Kafka)', async () => {
    const s = await scenario('behind', 1);
    const n = 6;
    await producer.sendEnvelopes(s.topic, Array.from({ length: n }, (_, i) => usageEnvelope(`b-${i}`, 'acct-b')));
    const first = consumerFor(s);
    await first.start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= n, 30_000, 'rows');
    await first.stop();
    expect((await kafkaCommitted(kafka, s.groupId, s.topic)).get(0)).toBe(n);

    // The database goes back to where it stood after offset 2 (its effects and its offset together); Kafka still says 6.
    await pool.query(`DELETE FROM ${quoteSchema(schema)}.applied WHERE topic = $1 AND kafka_offset > 2`, [s.topic]);
    await pool.query(`UPDATE ${quoteSchema(schema)}.kafka_consumer_offsets SET committed_offset = 2 WHERE group_id = $1 AND topic = $2`, [s.groupId, s.topic]);

    await producer.sendEnvelopes(s.topic, [usageEnvelope('b-after', 'acct-b')]);
    const second = consumerFor(s);
    await second.start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= n + 1, 20_000, 'offsets 3-6 applied');
    await caughtUp(s);
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: n + 1, distinct: n + 1 });
    expect((await readStoredOffsets(pool, schema, s.groupId, s.topic)).get(0)).toBe(BigInt(n));
  });

  it('goes back to the offset stored in PostgreSQL when the database falls behind while it runs (failed over to a replica behind it)', async () => {
    const s = await scenario('behind-live', 1);
    await producer.sendEnvelopes(s.topic, Array.from({ length: 3 }, (_, i) => usageEnvelope(`bl-${i}`, 'acct-bl')));
    const consumer = consumerFor(s);
    await consumer.start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= 3, 30_000, 'rows');
    // The database the consumer now talks to stood after offset 0: its effects and its offset together.
    await pool.query(`DELETE FROM ${quoteSchema(schema)}.applied WHERE topic = $1 AND kafka_offset > 0`, [s.topic]);
    await pool.query(`UPDATE ${quoteSchema(schema)}.kafka_consumer_offsets SET committed_offset = 0 WHERE group_id = $1 AND topic = $2`, [s.groupId, s.topic]);
    await producer.sendEnvelopes(s.topic, [usageEnvelope('bl-after', 'acct-bl')]);
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= 4, 20_000, 'offsets 1-3 applied');
    await caughtUp(s);
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 4, distinct: 4 });
    expect((await readStoredOffsets(pool, schema, s.groupId, s.topic)).get(0)).toBe(3n);
  });

  it('resumes from the first offset Kafka still holds when the stored one is gone (retention), instead of seeking again and again', async () => {
    const s = await scenario('retained', 1);
    await producer.sendEnvelopes(s.topic, Array.from({ length: 6 }, (_, i) => usageEnvelope(`t-${i}`, 'acct-t')));
    // PostgreSQL applied up to offset 1, Kafka committed 4, and offsets 0-2 are deleted: 2 can no longer be fetched.
    await pool.query(
      `INSERT INTO ${quoteSchema(schema)}.kafka_consumer_offsets (group_id, topic, partition, committed_offset) VALUES ($1, $2, 0, 1)`,
      [s.groupId, s.topic],
    );
    await withAdmin(kafka, async (admin) => {
      await admin.setOffsets({ groupId: s.groupId, topic: s.topic, partitions: [{ partition: 0, offset: '4' }] });
      await admin.deleteTopicRecords({ topic: s.topic, partitions: [{ partition: 0, offset: '3' }] });
    });
    const errors: Array<{ obj: unknown; msg: string }> = [];
    const logger: KafkaLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (obj, msg) => void errors.push({ obj, msg: msg ?? '' }) };
    const consumer = consumerFor(s, { logger });
    await consumer.start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= 3, 20_000, 'offsets 3-5 applied');
    const { rows } = await pool.query<{ kafka_offset: string }>(`SELECT kafka_offset FROM ${quoteSchema(schema)}.applied WHERE topic = $1 ORDER BY kafka_offset`, [s.topic]);
    expect(rows.map((row) => Number(row.kafka_offset))).toEqual([3, 4, 5]);
    expect(errors).toContainEqual(expect.objectContaining({ obj: expect.objectContaining({ missing: '2' }) }));
    // Not only a log line: counted for the alert (offsets 2, after the stored 1, up to the log's start 3).
    const lost = samplesOf(parsePrometheusText(await metricsRegistry.metrics()), 'tally_kafka_consumer_lost_offsets_total', { group: s.groupId });
    expect(lost).toEqual([expect.objectContaining({ labels: { group: s.groupId, topic: s.topic, partition: '0' }, value: 1 })]);
  });

  // The first batch of an assignment reads the stored offsets before anything else (fetchingFromStored): a failure
  // there (the offsets table missing or unreadable, say) stops the partition as a failing batch does, and must show.
  it('a partition whose stored offsets cannot be read shows in readiness, then applies once they can', async () => {
    const s = await scenario('unreadable', 1);
    const offsetsSchema = `${schema}_later`;
    await producer.sendEnvelopes(s.topic, Array.from({ length: 2 }, (_, i) => usageEnvelope(`ur-${i}`, 'acct-ur')));
    const consumer = consumerFor(s, { offsetsSchema, stall: { afterAttempts: 2, afterMs: 60_000 } });
    try {
      await consumer.start();
      await waitFor(async () => notReady(consumer), 30_000, 'readiness to show the partition that cannot start');
      await ensureOffsetsTable(pool, offsetsSchema);
      await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= 2, 60_000, 'rows once the offsets can be read');
      await waitFor(async () => !notReady(consumer), 10_000, 'ready again');
      expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 2, distinct: 2 });
    } finally {
      await consumer.stop();
      await pool.query(`DROP SCHEMA IF EXISTS ${quoteSchema(offsetsSchema)} CASCADE`);
    }
  }, 120_000);

  it('a transaction PostgreSQL stops answering (a frozen server, a dead network) shows in readiness, then the batch is applied once', async () => {
    const s = await scenario('frozen', 1);
    const n = 3;
    await producer.sendEnvelopes(s.topic, Array.from({ length: n }, (_, i) => usageEnvelope(`fz-${i}`, 'acct-fz')));
    const servicePool = createServicePool(databaseUrl, 4, { warn: () => undefined }, 'kafka-it-frozen', { queryTimeoutMs: 2_000, connectTimeoutMs: 0 });
    let frozen: number | undefined;
    const consumer = consumerFor(s, {
      pool: servicePool,
      stall: { afterAttempts: 1_000, afterMs: 5_000 },
      inFlightAfterMs: 5_000,
      retry: { retries: 1_000, minTimeoutMs: 100, maxTimeoutMs: 500 },
      handle: async ({ topic, partition, messages, tx }) => {
        if (frozen === undefined) {
          frozen = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
          process.kill(frozen, 'SIGSTOP'); // the socket stays open, nothing answers
        }
        await insertApplied(tx, schema, topic, partition, messages);
      },
    });
    try {
      await consumer.start();
      await waitFor(async () => notReady(consumer), 30_000, 'readiness to show the frozen transaction');
    } finally {
      if (frozen !== undefined) process.kill(frozen, 'SIGCONT');
    }
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= n, 60_000, 'rows after the server answers again');
    await waitFor(async () => !notReady(consumer), 10_000, 'ready again');
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: n, distinct: n });
    await consumer.stop();
    await servicePool.end();
  }, 120_000);

  it('retries a chunk that fails because a dependency is unavailable whole, not one message per transaction', async () => {
    // Isolating each message names a culprit; in an outage there is none, and a transaction per message is a thousand
    // times the work at the moment PostgreSQL can least take it.
    const s = await scenario('outage', 1);
    await producer.send(s.topic, Array.from({ length: 5 }, (_, i) => ({ key: 'acct-1', value: JSON.stringify(usageEnvelope(`outage-${i}`, 'acct-1')) })));
    const sizes: number[] = [];
    const consumer = consumerFor(s, {
      handle: async ({ topic, partition, messages, tx }) => {
        sizes.push(messages.length);
        if (sizes.length <= 4) throw new Error('Connection terminated unexpectedly');
        await insertApplied(tx, schema, topic, partition, messages);
      },
    });
    await consumer.start();
    await caughtUp(s);
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 5, distinct: 5 });
    expect(sizes).toEqual([5, 5, 5, 5, 5]);
  });

  it('dead-letters garbage and handler-rejected messages without blocking the valid one behind them', async () => {
    const s = await scenario('poison', 1);
    await producer.send(s.topic, [
      // Header names a product may send, among them two Object.prototype members: all go to the dead letter untouched.
      { key: 'acct-1', value: 'not json {', headers: { 'x-trace': 't-1', valueOf: 'v-1', constructor: 'c-1' } },
      { key: 'acct-1', value: JSON.stringify(usageEnvelope('good-1', 'acct-1')) },
      { key: 'acct-1', value: JSON.stringify(usageEnvelope('closed-1', 'acct-1')) },
    ]);
    const consumer = consumerFor(s, {
      handle: async ({ topic, partition, messages, tx, deadLetter }) => {
        const accepted = messages.filter((m) => {
          if (m.value.envelope.id !== 'closed-1') return true;
          deadLetter(m, 'ACCOUNT_CLOSED', { accountId: m.value.envelope.accountId });
          return false;
        });
        await insertApplied(tx, schema, topic, partition, accepted);
      },
    });
    await consumer.start();

    const dead = await readMessages(kafka, s.deadLetterTopic, 2);
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= 1, 20_000, 'valid row');
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 1, distinct: 1 });

    const byOffset = new Map(dead.map((m) => [header(m, DeadLetterHeaders.originalOffset), m]));
    expect([...byOffset.keys()].sort()).toEqual(['0', '2']);
    const garbage = byOffset.get('0');
    expect(garbage?.value?.toString()).toBe('not json {');
    expect(garbage?.key?.toString()).toBe('acct-1');
    expect(header(garbage, DeadLetterHeaders.reason)).toBe('INVALID_JSON');
    expect(JSON.parse(header(garbage, DeadLetterHeaders.details) ?? '')).toEqual([{ field: '(message)', reason: 'is not valid JSON' }]);
    expect(header(garbage, DeadLetterHeaders.originalTopic)).toBe(s.topic);
    expect(header(garbage, DeadLetterHeaders.originalPartition)).toBe('0');
    expect(header(garbage, DeadLetterHeaders.consumerGroup)).toBe(s.groupId);
    expect(header(garbage, 'x-trace')).toBe('t-1');
    expect([header(garbage, 'valueOf'), header(garbage, 'constructor')]).toEqual(['v-1', 'c-1']);
    const rejected = byOffset.get('2');
    expect(header(rejected, DeadLetterHeaders.reason)).toBe('ACCOUNT_CLOSED');
    expect(JSON.parse(header(rejected, DeadLetterHeaders.details) ?? '')).toEqual({ accountId: 'acct-1' });
    expect(JSON.parse(rejected?.value?.toString() ?? '').id).toBe('closed-1');

    await waitFor(async () => (await readStoredOffsets(pool, schema, s.groupId, s.topic)).get(0) === 2n, 10_000, 'offset 2');
    expect(consumer.stats()).toMatchObject({ applied: 1, deadLettered: 2 });
  });

  // A product's own usage topic (USAGE_TOPIC_NAMESPACES) not created yet, or retired: its absence stopped the whole
  // consumer (kafkajs's metadata request fails on any missing topic), so no account's usage was charged.
  it('reads its topic while an extra topic it is bound to does not exist, shows that in a gauge (not readiness), and reads the extra topic once it is created', async () => {
    const s = await scenario('missing-extra', 1);
    const extra = `${s.topic}.product`;
    topics.push(extra);
    await producer.send(s.topic, [{ key: 'acct-1', value: JSON.stringify(usageEnvelope('main-1', 'acct-1')) }]);
    const consumer = consumerFor(s, { topics: [s.topic, extra], missingTopicsRecheckMs: 500 });
    await consumer.start();

    await caughtUp(s);
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 1, distinct: 1 });
    // Shown (gauge tally_kafka_consumer_topic_missing, alert TallyConsumerTopicMissing), not a readiness failure: a
    // product's missing topic must not take every pod out of service either.
    expect(consumer.missingTopics()).toEqual([extra]);
    const missingGauge = async () => samplesOf(parsePrometheusText(await metricsRegistry.metrics()), 'tally_kafka_consumer_topic_missing').filter((sample) => sample.labels.topic === extra);
    expect((await missingGauge()).map((sample) => sample.value)).toEqual([1]);
    expect(() => consumer.checkFlowing()).not.toThrow();

    await ensureTopics(kafka, [extra], 1);
    await producer.send(extra, [{ key: 'acct-2', value: JSON.stringify(usageEnvelope('product-1', 'acct-2')) }]);
    await waitFor(async () => (await countApplied(pool, schema, extra)).rows === 1, 30_000, 'the extra topic read once created');
    expect(consumer.missingTopics()).toEqual([]);
    expect(await missingGauge()).toEqual([]);
    await producer.send(s.topic, [{ key: 'acct-1', value: JSON.stringify(usageEnvelope('main-2', 'acct-1')) }]);
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows === 2, 30_000, 'the main topic still read');
  });

  it('a restart to read a created topic that fails leaves the consumer not ready, and the next check starts it again', async () => {
    const s = await scenario('missing-extra-blip', 1);
    const extra = `${s.topic}.product`;
    topics.push(extra);
    // Our producer (the dead letters') refuses to connect while `blip` is set: the start after the topic appears fails.
    let blip = false;
    class BlippingProducer extends KafkaProducer {
      override connect(): Promise<void> {
        return blip ? Promise.reject(new Error('broker blip')) : super.connect();
      }
    }
    const blipping = new BlippingProducer(kafka);
    const consumer = consumerFor(s, { topics: [s.topic, extra], missingTopicsRecheckMs: 300, producer: blipping });
    try {
      await consumer.start();
      blip = true;
      await ensureTopics(kafka, [extra], 1);
      await waitFor(async () => notReady(consumer), 20_000, 'not ready while down');
      expect(() => consumer.checkFlowing()).toThrow(/down/);

      blip = false;
      await producer.send(extra, [{ key: 'acct-2', value: JSON.stringify(usageEnvelope('product-blip-1', 'acct-2')) }]);
      await producer.send(s.topic, [{ key: 'acct-1', value: JSON.stringify(usageEnvelope('main-blip-1', 'acct-1')) }]);
      await waitFor(async () => (await countApplied(pool, schema, extra)).rows === 1 && (await countApplied(pool, schema, s.topic)).rows === 1, 30_000, 'both topics read');
      expect(notReady(consumer)).toBe(false);
    } finally {
      await consumer.stop();
      await blipping.disconnect();
    }
  });

  // A header sent with a null value (Java's headers.add("x", null), librdkafka's length -1) comes as null: reading it as
  // text threw outside the dead-letter path, so the partition's batch failed for ever and the consumer restarted.
  it('takes messages whose headers have null values: the valid applied, the garbage dead-lettered with its headers as they came', async () => {
    const s = await scenario('null-header', 1);
    const nullHeader = { 'x-empty': null, 'x-list': ['a', null] } as never;
    // As a product's own producer sends them (kafkajs writes a null value as length -1, as Java's client does).
    const foreign = kafka.producer();
    await foreign.connect();
    await foreign.send({ topic: s.topic, messages: [
      { key: 'acct-1', value: JSON.stringify(usageEnvelope('null-h-1', 'acct-1')), headers: nullHeader },
      { key: 'acct-1', value: 'not json {', headers: nullHeader },
      { key: 'acct-1', value: JSON.stringify(usageEnvelope('null-h-2', 'acct-1')) },
    ] });
    await foreign.disconnect();
    const consumer = consumerFor(s);
    await consumer.start();

    const [dead] = await readMessages(kafka, s.deadLetterTopic, 1);
    await caughtUp(s);
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 2, distinct: 2 });
    expect(header(dead, DeadLetterHeaders.reason)).toBe('INVALID_JSON');
    expect(dead.headers?.['x-empty']).toBeNull();
    expect(header(dead, 'x-list')).toBe('a,');
    expect(consumer.stats()).toMatchObject({ applied: 2, deadLettered: 1 });
  });

  it('sends dead letters with none of its transactions open, and applies the rest once (an open transaction holds back every relay tail)', async () => {
    const s = await scenario('dlq-no-tx', 1);
    const applicationName = `dlq-no-tx-${suffix}`;
    const own = new Pool({ connectionString: databaseUrl, max: 2, application_name: applicationName });
    // What the consumer's sessions are doing at the moment each dead letter is sent.
    const openWhileSending: number[] = [];
    const watched = new Proxy(producer, {
      get(target, property) {
        if (property === 'send') {
          return async (...args: Parameters<KafkaProducer['send']>) => {
            const { rows } = await pool.query<{ open: number }>(
              "SELECT count(*)::int AS open FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
              [applicationName],
            );
            openWhileSending.push(rows[0].open);
            return target.send(...args);
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    await producer.send(s.topic, [
      { key: 'acct-1', value: 'not json {' },
      { key: 'acct-1', value: JSON.stringify(usageEnvelope('good-1', 'acct-1')) },
      { key: 'acct-1', value: JSON.stringify(usageEnvelope('closed-1', 'acct-1')) },
      { key: 'acct-1', value: JSON.stringify(usageEnvelope('good-2', 'acct-1')) },
    ]);
    try {
      const consumer = consumerFor(s, {
        pool: own,
        producer: watched,
        handle: async ({ topic, partition, messages, tx, deadLetter }) => {
          const accepted = messages.filter((m) => {
            if (m.value.envelope.id !== 'closed-1') return true;
            deadLetter(m, 'ACCOUNT_CLOSED');
            return false;
          });
          await insertApplied(tx, schema, topic, partition, accepted);
        },
      });
      await consumer.start();
      await waitFor(async () => (await readStoredOffsets(pool, schema, s.groupId, s.topic)).get(0) === 3n, 20_000, 'offset 3');
      const dead = await readMessages(kafka, s.deadLetterTopic, 2);
      expect(dead.map((m) => header(m, DeadLetterHeaders.originalOffset)).sort()).toEqual(['0', '2']);
      expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 2, distinct: 2 });
      expect(openWhileSending.length).toBeGreaterThan(0);
      expect(openWhileSending.filter((open) => open > 0)).toEqual([]);
      expect(consumer.stats()).toMatchObject({ applied: 2, deadLettered: 2 });
      await consumer.stop();
    } finally {
      await own.end();
    }
  });

  it('a dead letter whose send fails is sent again on the next attempt, its pass rolled back once (no connection given back twice), the rest applied once', async () => {
    const s = await scenario('dlq-send-fails', 1);
    const missing = `${s.topic}.dlq-later`; // no such topic yet: every send to it fails
    topics.push(missing);
    const quickly = new KafkaProducer(createKafkaClient({ clientId: `dlq-fails-${suffix}`, brokers, retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 200 } }));
    const said: string[] = [];
    const note = (obj: object, msg?: string) => void said.push(`${msg ?? ''} ${JSON.stringify(obj)}`);
    const logger: KafkaLogger = { debug: () => undefined, info: () => undefined, warn: note, error: note };
    await producer.send(s.topic, [
      { key: 'acct-1', value: 'not json {' },
      { key: 'acct-1', value: JSON.stringify(usageEnvelope('after-failed-dlq', 'acct-1')) },
    ]);
    try {
      const consumer = consumerFor({ ...s, deadLetterTopic: missing }, { producer: quickly, logger, retry: { retries: 50, minTimeoutMs: 100, maxTimeoutMs: 300 } });
      await consumer.start();
      await waitFor(async () => said.some((line) => line.includes('batch failed')), 20_000, 'a failed dead-letter send');
      await ensureTopics(kafka, [missing], 1);
      const [dead] = await readMessages(kafka, missing, 1);
      expect(dead.value?.toString()).toBe('not json {');
      await waitFor(async () => (await readStoredOffsets(pool, schema, s.groupId, s.topic)).get(0) === 1n, 20_000, 'offset 1');
      expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 1, distinct: 1 });
      expect(said.filter((line) => /already been released|no transaction in progress/i.test(line))).toEqual([]);
    } finally {
      await quickly.disconnect();
    }
  });

  it('dead-letters a message as large as its topic takes (its dead letter carries more headers) without stopping the partition', async () => {
    const s = await scenario('large', 1, DEAD_LETTER_SUFFIX);
    // Just under the broker's default limit (message.max.bytes 1,048,588 for the whole record batch).
    const large = Buffer.alloc(1_048_450, 'x');
    await producer.send(s.topic, [{ key: 'acct-big', value: large }]);
    await producer.send(s.topic, [{ key: 'acct-big', value: JSON.stringify(usageEnvelope('after-large', 'acct-big')) }]);
    const consumer = consumerFor(s, { retry: { retries: 2, minTimeoutMs: 50, maxTimeoutMs: 100 } });
    await consumer.start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= 1, 30_000, 'the message behind the large one');
    const [dead] = await readMessages(kafka, s.deadLetterTopic, 1);
    expect(dead.value?.equals(large)).toBe(true);
    expect(header(dead, DeadLetterHeaders.reason)).toBe('INVALID_JSON');
  });

  it('isolates the message a handler refuses with a ContractViolation and applies the rest', async () => {
    const s = await scenario('isolate', 1);
    await producer.sendEnvelopes(s.topic, ['a', 'bad', 'c'].map((id) => usageEnvelope(id, 'acct-2')));
    const consumer = consumerFor(s, {
      handle: async ({ topic, partition, messages, tx }) => {
        if (messages.some((m) => m.value.envelope.id === 'bad')) {
          throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'data.model', reason: 'is not on the rate card' }]);
        }
        await insertApplied(tx, schema, topic, partition, messages);
      },
    });
    await consumer.start();
    const [dead] = await readMessages(kafka, s.deadLetterTopic, 1);
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= 2, 20_000, 'two rows');
    expect(JSON.parse(dead.value?.toString() ?? '').id).toBe('bad');
    expect(header(dead, DeadLetterHeaders.reason)).toBe('INVALID_PAYLOAD');
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: 2, distinct: 2 });
  });

  it('retries a transient failure with backoff and applies the batch once, with no dead letter', async () => {
    const s = await scenario('transient', 1);
    const n = 5;
    await producer.sendEnvelopes(s.topic, Array.from({ length: n }, (_, i) => usageEnvelope(`t-${i}`, 'acct-3')));
    let calls = 0;
    const consumer = consumerFor(s, {
      handle: async ({ topic, partition, messages, tx }) => {
        calls += 1;
        // Writes first, then fails: the rollback must undo them.
        await insertApplied(tx, schema, topic, partition, messages);
        if (calls <= 2) throw new Error('database hiccup');
      },
    });
    await consumer.start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= n, 20_000, 'rows');
    await caughtUp(s);
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: n, distinct: n });
    expect(calls).toBe(3);
    expect(consumer.stats()).toMatchObject({ retries: 2, applied: n, deadLettered: 0 });
    expect((await highWatermarks(kafka, s.deadLetterTopic)).get(0)).toBe(0);
  });

  it('after retries are exhausted throws to kafkajs, which redelivers the same batch: never skipped', async () => {
    const s = await scenario('exhausted', 1);
    const n = 4;
    await producer.sendEnvelopes(s.topic, Array.from({ length: n }, (_, i) => usageEnvelope(`x-${i}`, 'acct-6')));
    const errors: string[] = [];
    const logger: KafkaLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (_obj, msg) => void errors.push(msg ?? '') };
    let calls = 0;
    const consumer = consumerFor(s, {
      logger,
      retry: { retries: 1, minTimeoutMs: 20, maxTimeoutMs: 40 },
      handle: async ({ topic, partition, messages, tx }) => {
        calls += 1;
        if (calls <= 3) throw new Error('still down');
        await insertApplied(tx, schema, topic, partition, messages);
      },
    });
    await consumer.start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= n, 30_000, 'rows');
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: n, distinct: n });
    expect(errors).toContain('batch failed after retries: restarting the consumer');
    expect((await highWatermarks(kafka, s.deadLetterTopic)).get(0)).toBe(0);
  });

  it('applies the partitions of a fetch that arrive together in one transaction, each offset stored in it', async () => {
    const s = await scenario('grouped', 3);
    const n = 60;
    await producer.sendEnvelopes(s.topic, Array.from({ length: n }, (_, i) => usageEnvelope(`gr-${i}`, `acct-g${i % 11}`)));
    const transactionOf = new Map<number, Set<string>>(); // partition → the PostgreSQL transactions that applied it
    const consumer = consumerFor(s, {
      partitionsConsumedConcurrently: 3,
      handle: async ({ topic, partition, messages, tx }) => {
        const { rows: [{ txid }] } = await tx.query<{ txid: string }>('SELECT txid_current()::text AS txid');
        transactionOf.set(partition, (transactionOf.get(partition) ?? new Set()).add(txid));
        await insertApplied(tx, schema, topic, partition, messages);
      },
    });
    await consumer.start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= n, 30_000, 'rows');

    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: n, distinct: n });
    const high = await highWatermarks(kafka, s.topic);
    const stored = await readStoredOffsets(pool, schema, s.groupId, s.topic);
    for (const [partition, next] of high) if (next > 0) expect(stored.get(partition)).toBe(BigInt(next - 1));
    // The three partitions were pre-produced, so the first fetch holds all three: fewer transactions than partitions.
    const transactions = new Set([...transactionOf.values()].flatMap((txids) => [...txids]));
    expect(transactionOf.size).toBe(3);
    expect(transactions.size).toBeLessThan(3);
    expect(consumer.stats()).toMatchObject({ applied: n, transactions: transactions.size, groupsSplit: 0 });
  });

  it('a shared transaction that fails is rolled back and each partition applied on its own: nothing twice, the culprit isolated', async () => {
    const s = await scenario('grouped-fail', 3);
    const n = 30;
    const envelopes = Array.from({ length: n }, (_, i) => usageEnvelope(`gf-${i}`, `acct-h${i % 7}`));
    envelopes.push(usageEnvelope('gf-bad', 'acct-h0'));
    await producer.sendEnvelopes(s.topic, envelopes);
    let failedOnce = false;
    const seen = new Map<string, number>(); // txid → partitions handled in it
    const consumer = consumerFor(s, {
      partitionsConsumedConcurrently: 3,
      handle: async ({ topic, partition, messages, tx }) => {
        const { rows: [{ txid }] } = await tx.query<{ txid: string }>('SELECT txid_current()::text AS txid');
        seen.set(txid, (seen.get(txid) ?? 0) + 1);
        // Writes first, then fails: the rollback must undo every partition's writes in the shared transaction.
        await insertApplied(tx, schema, topic, partition, messages);
        if (!failedOnce && (seen.get(txid) ?? 0) > 1) {
          failedOnce = true;
          throw new Error('database hiccup in a shared transaction');
        }
        // Refused only once the shared transaction failed: refused first, the group would split before it shared anything.
        if (failedOnce && messages.some((m) => m.value.envelope.id === 'gf-bad')) {
          throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'data.model', reason: 'is not on the rate card' }]);
        }
      },
    });
    await consumer.start();
    const [dead] = await readMessages(kafka, s.deadLetterTopic, 1);
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= n, 30_000, 'rows');
    await caughtUp(s);

    expect(failedOnce).toBe(true);
    expect(JSON.parse(dead.value?.toString() ?? '').id).toBe('gf-bad');
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: n, distinct: n });
    expect(consumer.stats()).toMatchObject({ applied: n, deadLettered: 1 });
    expect(consumer.stats().groupsSplit).toBeGreaterThanOrEqual(1);
  });

  it('stops gracefully: the batch in flight finishes and commits, then the consumer leaves', async () => {
    const s = await scenario('graceful', 1);
    const n = 8;
    await producer.sendEnvelopes(s.topic, Array.from({ length: n }, (_, i) => usageEnvelope(`g-${i}`, 'acct-4')));
    let entered!: () => void;
    const inFlight = new Promise<void>((r) => (entered = r));
    const consumer = consumerFor(s, {
      handle: async ({ topic, partition, messages, tx }) => {
        entered();
        await sleep(1_500);
        await insertApplied(tx, schema, topic, partition, messages);
      },
    });
    await consumer.start();
    await inFlight;
    expect((await countApplied(pool, schema, s.topic)).rows).toBe(0);
    await consumer.stop();

    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: n, distinct: n });
    expect((await readStoredOffsets(pool, schema, s.groupId, s.topic)).get(0)).toBe(BigInt(n - 1));
    expect((await kafkaCommitted(kafka, s.groupId, s.topic)).get(0)).toBe(n);
  });

  it('stopped while it is still starting, it leaves no consumer behind in its group', async () => {
    const s = await scenario('stop-while-starting', 1);
    const early = consumerFor(s);
    const starting = early.start();
    await early.stop(); // e.g. the app closes while a background start is joining the group
    await starting.catch(() => undefined);

    // Sentinel: a fresh member of the same group gets the partition and applies a message; at that point a
    // consumer the early start had left running would be a member of the group too.
    await producer.sendEnvelopes(s.topic, [usageEnvelope('after-stop', 'acct-s')]);
    await consumerFor(s).start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows === 1);
    const members = await withAdmin(kafka, async (admin) => (await admin.describeGroups([s.groupId])).groups[0].members);
    expect(members).toHaveLength(1);
  });

  it('skips redelivered messages after a kill -9 between the database commit and the Kafka commit', async () => {
    const s = await scenario('redelivery', 1);
    const n = 10;
    const perTransaction = 3;
    await producer.sendEnvelopes(s.topic, Array.from({ length: n }, (_, i) => usageEnvelope(`r-${i}`, 'acct-5')));

    const config = { brokers, databaseUrl, topic: s.topic, groupId: s.groupId, schema, deadLetterTopic: s.deadLetterTopic, maxMessagesPerTransaction: perTransaction };
    const child = spawn(
      process.execPath,
      ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register', 'libs/kafka/test/redelivery-crash.harness.ts', JSON.stringify(config)],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`child did not crash in time:\n${output}`));
      }, 45_000);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        resolveExit({ code, signal });
      });
    });
    expect({ exit, output }).toMatchObject({ exit: { signal: 'SIGKILL' }, output: expect.stringContaining(`COMMITTED ${perTransaction - 1}`) });

    // The database has the first transaction; Kafka never heard of it.
    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: perTransaction, distinct: perTransaction });
    expect((await readStoredOffsets(pool, schema, s.groupId, s.topic)).get(0)).toBe(BigInt(perTransaction - 1));
    const kafkaOffsetAfterCrash = (await kafkaCommitted(kafka, s.groupId, s.topic)).get(0);
    expect(kafkaOffsetAfterCrash).toBeLessThan(perTransaction); // -1: nothing committed, so a redelivery is due

    const restarted = consumerFor(s);
    await restarted.start();
    await waitFor(async () => (await countApplied(pool, schema, s.topic)).rows >= n, 40_000, 'all rows after restart');
    await caughtUp(s);

    expect(await countApplied(pool, schema, s.topic)).toEqual({ rows: n, distinct: n });
    expect(restarted.stats()).toMatchObject({ skippedRedeliveries: perTransaction, applied: n - perTransaction });
    expect((await readStoredOffsets(pool, schema, s.groupId, s.topic)).get(0)).toBe(BigInt(n - 1));
  }, 100_000);
});

describe('KafkaProducer on the real broker', () => {
  it('sends more than the broker takes in one batch (1 MiB) for one key, whole and in order', async () => {
    const s = await scenario('big-send', 1);
    const n = 3_000; // ~1 KiB each: about 3 MiB for one partition, which one produce request would have carried
    const messages = Array.from({ length: n }, (_, i) => ({ key: 'one-account', value: JSON.stringify({ i, pad: 'x'.repeat(1_000) }) }));
    await producer.send(s.topic, messages);
    expect((await highWatermarks(kafka, s.topic)).get(0)).toBe(n);
    const read = await readMessages(kafka, s.topic, n);
    expect(read.map((message) => JSON.parse(message.value?.toString() ?? '{}').i)).toEqual(messages.map((_, i) => i));
  }, 60_000);

  it('splits by partition as the broker assigns them: several busy keys land whole, in order per key', async () => {
    const s = await scenario('big-send-keys', 6);
    const keys = ['acct-a', 'acct-b', 'acct-c'];
    const messages = Array.from({ length: 2_400 }, (_, i) => ({ key: keys[i % 3], value: JSON.stringify({ i, pad: 'x'.repeat(1_000) }) }));
    await producer.send(s.topic, messages);
    const partitionOf = keyPartitioner(6);
    const read = await readMessages(kafka, s.topic, messages.length);
    for (const key of keys) {
      const ofKey = read.filter((message) => message.key?.toString() === key);
      expect(ofKey.map((message) => JSON.parse(message.value?.toString() ?? '{}').i)).toEqual(messages.flatMap((m, i) => (m.key === key ? [i] : [])));
    }
    const watermarks = await highWatermarks(kafka, s.topic);
    for (const key of keys) expect(watermarks.get(partitionOf(key))).toBeGreaterThanOrEqual(800);
  }, 60_000);
});

describe('kafkaHealth', () => {
  it('resolves against the running broker and rejects against a dead address', async () => {
    await expect(kafkaHealth(kafka)).resolves.toBeUndefined();
    const quiet: KafkaLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
    const dead = createKafkaClient({ clientId: 'dead', brokers: ['127.0.0.1:1'], logger: quiet, retry: { retries: 0 } });
    await expect(kafkaHealth(dead, { timeoutMs: 2_000 })).rejects.toThrow();
  });
});

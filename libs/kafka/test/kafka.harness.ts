import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { type Kafka, type KafkaMessage } from 'kafkajs';
import type { Pool, PoolClient } from 'pg';
import { parseMessage, Topics, type ParsedMessage } from '@tally/contracts';
import { quoteSchema } from '../src/consumer-offsets.repository';
import type { ConsumedMessage } from '../src/batch.consumer';
import { withAdmin } from '../src/kafka-topics.client';

/** Topics, groups and schemas are unique per test file/case so suites can share the broker and database. */
export const uniqueSuffix = (): string => `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;

export function usageEnvelope(id: string, accountId: string) {
  return {
    id,
    type: 'UsageRecorded',
    version: 1,
    accountId,
    occurredAt: new Date().toISOString(),
    data: { feature: 'chat', model: 'gpt-4o', inputTokens: 120, outputTokens: 40 },
  };
}

/** Test topics have random names; they carry usage.events.v1 messages. */
export const parseUsage = (_topic: string, message: KafkaMessage): ParsedMessage => parseMessage(Topics.usageEvents, message.value);

export async function createAppliedTable(pool: Pool, schema: string): Promise<void> {
  // No unique constraint on purpose: a double apply must show up as a duplicate row, not as an error.
  await pool.query(`CREATE TABLE IF NOT EXISTS ${quoteSchema(schema)}.applied (
    message_id text NOT NULL, topic text NOT NULL, partition int NOT NULL, kafka_offset bigint NOT NULL)`);
}

export async function insertApplied(tx: PoolClient, schema: string, topic: string, partition: number, messages: ConsumedMessage<ParsedMessage>[]): Promise<void> {
  for (const message of messages) {
    await tx.query(`INSERT INTO ${quoteSchema(schema)}.applied (message_id, topic, partition, kafka_offset) VALUES ($1, $2, $3, $4)`, [
      message.value.envelope.id,
      topic,
      partition,
      message.offset,
    ]);
  }
}

export async function countApplied(pool: Pool, schema: string, topic: string): Promise<{ rows: number; distinct: number }> {
  const { rows } = await pool.query<{ rows: string; distinct: string }>(
    `SELECT count(*) AS rows, count(DISTINCT message_id) AS distinct FROM ${quoteSchema(schema)}.applied WHERE topic = $1`,
    [topic],
  );
  return { rows: Number(rows[0].rows), distinct: Number(rows[0].distinct) };
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** Reads `count` messages of a topic from the beginning with a throwaway group. */
export async function readMessages(kafka: Kafka, topic: string, count: number, timeoutMs = 30_000): Promise<KafkaMessage[]> {
  const groupId = `reader_${uniqueSuffix()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 500 });
  const seen: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void seen.push(message) });
    await waitFor(async () => seen.length >= count, timeoutMs, `${count} messages on ${topic}`);
    return seen;
  } finally {
    await consumer.disconnect();
    await deleteKafkaResources(kafka, [], [groupId]);
  }
}

/** Kafka's committed offset (next to read) per partition; -1 = nothing committed. */
export function kafkaCommitted(kafka: Kafka, groupId: string, topic: string): Promise<Map<number, number>> {
  return withAdmin(kafka, async (admin) => {
    const [result] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map(result.partitions.map((p) => [p.partition, Number(p.offset)]));
  });
}

export function highWatermarks(kafka: Kafka, topic: string): Promise<Map<number, number>> {
  return withAdmin(kafka, async (admin) => new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)])));
}

export function deleteKafkaResources(kafka: Kafka, topics: string[], groups: string[]): Promise<void> {
  return withAdmin(kafka, async (admin) => {
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
    const existing = new Set(await admin.listTopics());
    const doomed = topics.filter((topic) => existing.has(topic));
    if (doomed.length > 0) await admin.deleteTopics({ topics: doomed }).catch(() => undefined);
  });
}

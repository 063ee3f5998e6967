import { randomUUID } from 'node:crypto';
import { DEAD_LETTER_SUFFIX, headersToSendAgain, headersToStrings, withAdmin } from '@tally/kafka';
import type { Kafka } from 'kafkajs';

export interface PartitionRange {
  partition: number;
  /** First offset kept by the broker (log start). */
  low: string;
  /** The high watermark: the next offset to be written. */
  high: string;
}

export interface StoredMessage {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: string | null;
  value: Buffer | null;
  /** As text, to read (binary values as UTF-8, a header without a value as ''). */
  headers: Record<string, string>;
  /** As received, to send again: binary values and headers without a value kept as they were. */
  headersAsSent: Record<string, string | Buffer | null>;
}

export async function deadLetterTopics(kafka: Kafka): Promise<string[]> {
  return withAdmin(kafka, async (admin) => (await admin.listTopics()).filter((topic) => topic.endsWith(DEAD_LETTER_SUFFIX)).sort());
}

export async function partitionRanges(kafka: Kafka, topic: string): Promise<PartitionRange[]> {
  return withAdmin(kafka, async (admin) =>
    (await admin.fetchTopicOffsets(topic)).map(({ partition, low, high }) => ({ partition, low, high })).sort((a, b) => a.partition - b.partition),
  );
}

/**
 * Reads `topic` from each range's `from` up to (not including) its `to`, with a throwaway consumer group that never
 * commits and is deleted afterwards, handing each message to `onMessage` (awaited: fetching waits for it, and the
 * group hears from the consumer after each) in offset order per partition; nothing is kept. Resolves once every range
 * is read; fails with `onMessage`'s failure, or when no message came for `idleTimeoutMs` (the wait starts again with
 * each one, so a long topic is read whole, where a bound on the whole read failed on a large dead-letter topic).
 */
export async function forEachMessage(
  kafka: Kafka,
  topic: string,
  ranges: { partition: number; from: string; to: string }[],
  onMessage: (message: StoredMessage) => void | Promise<void>,
  idleTimeoutMs = 30_000,
): Promise<void> {
  let failed = false;
  // Only what the broker has: a range beyond the high watermark (or deleted by retention) would never be reached.
  const held = new Map((await partitionRanges(kafka, topic)).map((range) => [range.partition, range]));
  const wanted = ranges.flatMap((range) => {
    const partition = held.get(range.partition);
    if (!partition) return [];
    const from = max(BigInt(range.from), BigInt(partition.low));
    const to = min(BigInt(range.to), BigInt(partition.high));
    return from < to ? [{ partition: range.partition, from: from.toString(), to: to.toString() }] : [];
  });
  if (wanted.length === 0) return;
  const groupId = `tally-cli-read-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
  const remaining = new Map(wanted.map((range) => [range.partition, range]));
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const idle = () => reject(new Error(`reading ${topic}: no message for ${idleTimeoutMs} ms with ${remaining.size} partition(s) not read to their end`));
      timer = setTimeout(idle, idleTimeoutMs);
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            if (failed || remaining.size === 0) return; // done: what is still fetched is not waited for
            // Silence is timed between messages, not while the caller handles one (a replay's send may be retried).
            clearTimeout(timer);
            const range = remaining.get(partition);
            if (!range || BigInt(message.offset) < BigInt(range.from)) {
              timer = setTimeout(idle, idleTimeoutMs);
              return;
            }
            if (BigInt(message.offset) < BigInt(range.to)) {
              try {
                await onMessage({ topic, partition, offset: message.offset, timestamp: message.timestamp, key: message.key?.toString() ?? null, value: message.value, headers: headersToStrings(message.headers), headersAsSent: headersToSendAgain(message.headers) });
              } catch (error) {
                // The caller's failure ends the read (kafkajs would retry the message, then restart the consumer).
                failed = true;
                clearTimeout(timer);
                reject(error);
                return;
              }
            }
            if (BigInt(message.offset) >= BigInt(range.to) - 1n) remaining.delete(partition);
            if (remaining.size === 0) {
              resolve();
              return;
            }
            timer = setTimeout(idle, idleTimeoutMs);
          },
        })
        .then(() => {
          for (const range of wanted) consumer.seek({ topic, partition: range.partition, offset: range.from });
        }, reject);
    });
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
    await withAdmin(kafka, (admin) => admin.deleteGroups([groupId])).catch(() => undefined);
  }
}

/** forEachMessage, the messages kept and returned in partition and offset order: for a few (one message, a page). */
export async function readMessages(kafka: Kafka, topic: string, ranges: { partition: number; from: string; to: string }[], idleTimeoutMs = 30_000): Promise<StoredMessage[]> {
  const messages: StoredMessage[] = [];
  await forEachMessage(kafka, topic, ranges, (message) => void messages.push(message), idleTimeoutMs);
  return messages.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}

const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);

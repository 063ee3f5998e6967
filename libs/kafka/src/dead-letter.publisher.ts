import type { IHeaders, KafkaMessage } from 'kafkajs';
import type { OutgoingMessage } from './kafka.producer';

/** Dead-letter topics are named after their source topic with this suffix (usage.events.v1 → usage.events.dlq.v1's `.dlq.v1`). */
export const DEAD_LETTER_SUFFIX = '.dlq.v1';

/** Header names on dead-lettered messages; operators' tooling reads them, so treat them as a contract. */
export const DeadLetterHeaders = {
  reason: 'x-dead-letter-reason',
  details: 'x-dead-letter-details',
  originalTopic: 'x-original-topic',
  originalPartition: 'x-original-partition',
  originalOffset: 'x-original-offset',
  originalTimestamp: 'x-original-timestamp',
  consumerGroup: 'x-consumer-group',
  failedAt: 'x-dead-lettered-at',
} as const;

/**
 * Set by a dead letter's replay (`tally dlq replay`) on the message it sends again: when the message was first
 * produced (its first record's timestamp, from x-original-timestamp), kept through later replays. A replay is a new
 * record stamped when it is sent; a consumer that judges a message by when it was produced reads this too.
 */
export const FIRST_PRODUCED_AT_HEADER = 'x-first-produced-at';

/**
 * The earliest of Kafka timestamps (ms since the epoch, as text: a record's, FIRST_PRODUCED_AT_HEADER's), those that
 * are not one left out (anything but a positive integer of at most 16 digits: a header a producer set itself, "soon"):
 * what a replay carries on as FIRST_PRODUCED_AT_HEADER, and what a consumer dates a message's production by.
 */
export function earliestStamp(...stamps: (string | undefined)[]): string | undefined {
  const usable = stamps.filter((stamp): stamp is string => stamp !== undefined && /^\d{1,16}$/.test(stamp) && Number(stamp) > 0);
  return usable.length === 0 ? undefined : usable.reduce((a, b) => (Number(b) < Number(a) ? b : a));
}

/**
 * Set by a dead letter's replay: the consumer group that dead-lettered it (x-consumer-group). The message goes back to
 * its source topic, which other groups read too and applied the first time: they pass over it (BatchConsumer).
 */
export const REPLAY_FOR_GROUP_HEADER = 'x-replay-for-group';

export interface DeadLetter {
  topic: string;
  partition: number;
  message: KafkaMessage;
  /** A stable code: a ContractViolation code or the handler's own (e.g. "UNKNOWN_ACCOUNT"). */
  reason: string;
  /** JSON-serialisable: the violation's field issues or the handler's details. */
  details?: unknown;
}

/**
 * Sets header `name` as an own property of `headers`: defined, not assigned, so a header named `__proto__` stays a
 * header instead of becoming (or, for a string, silently not becoming) the object's prototype.
 */
function setHeader<T>(headers: Record<string, T>, name: string, value: T): void {
  Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * A message's headers as text, every name kept (a repeated header's values joined with commas). A header sent without
 * a value (length -1: Java's `headers.add("x", null)`) comes from kafkajs as null, whatever its type says: it reads as
 * the empty string, never as a TypeError that fails the partition's batch for ever.
 */
export function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {}) as [string, HeaderValue][]) {
    if (value !== undefined) setHeader(out, name, Array.isArray(value) ? value.map(headerText).join(',') : headerText(value));
  }
  return out;
}

/**
 * A message's headers as they can be produced again: each value's bytes as received (binary ones too), a header sent
 * without a value still without one (null), a repeated header's values joined with commas (as headersToStrings).
 */
export function headersToSendAgain(headers: IHeaders | undefined): Record<string, string | Buffer | null> {
  const out: Record<string, string | Buffer | null> = {};
  for (const [name, value] of Object.entries(headers ?? {}) as [string, HeaderValue][]) {
    if (value !== undefined) setHeader(out, name, Array.isArray(value) ? value.map(headerText).join(',') : value);
  }
  return out;
}

/** A header's value as kafkajs hands it over: null for a header sent without one. */
type HeaderValue = Buffer | string | null | (Buffer | string | null)[] | undefined;

const headerText = (value: Buffer | string | null): string => (value === null ? '' : value.toString());

/** The most the details header holds: a refusal's details must never make the dead letter too large to publish. */
export const MAX_DEAD_LETTER_DETAILS_CHARS = 8_192;

/**
 * The details as JSON: bigints (amounts in micro-credits) as decimal strings, which JSON.stringify would throw on,
 * failing the dead letter and so stopping its partition. Longer than MAX_DEAD_LETTER_DETAILS_CHARS (class-validator
 * lists one issue per unknown property, so a message can carry many times its size in issues), they are cut and
 * say so: `{"truncated": true, "length": <full length>, "head": "<the first characters>"}`.
 */
export function detailsHeader(details: unknown): string {
  const text = JSON.stringify(details ?? null, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  if (text.length <= MAX_DEAD_LETTER_DETAILS_CHARS) return text;
  return JSON.stringify({ truncated: true, length: text.length, head: text.slice(0, MAX_DEAD_LETTER_DETAILS_CHARS / 2) });
}

/**
 * The original key, value bytes and headers, untouched (so the message can be replayed as is), plus the
 * reason and where it came from.
 */
export function toDeadLetterMessage(deadLetter: DeadLetter, groupId: string, now: Date): OutgoingMessage & { key: string } {
  const { message } = deadLetter;
  const headers = headersToSendAgain(message.headers);
  Object.assign(headers, {
    [DeadLetterHeaders.reason]: deadLetter.reason,
    [DeadLetterHeaders.details]: detailsHeader(deadLetter.details),
    [DeadLetterHeaders.originalTopic]: deadLetter.topic,
    [DeadLetterHeaders.originalPartition]: String(deadLetter.partition),
    [DeadLetterHeaders.originalOffset]: message.offset,
    [DeadLetterHeaders.originalTimestamp]: message.timestamp,
    [DeadLetterHeaders.consumerGroup]: groupId,
    [DeadLetterHeaders.failedAt]: now.toISOString(),
  });
  return {
    // A null key would spread one account's dead letters over partitions; the empty key keeps them together.
    key: message.key === null ? '' : message.key.toString(),
    value: message.value ?? Buffer.alloc(0),
    headers,
  };
}

import type { Kafka, Message, Producer, RecordMetadata } from 'kafkajs';
import { serializeEnvelope } from '@tally/contracts';
import { NotReadyError } from '@tally/shared';
import { topicPartitionCount } from './kafka-topics.client';
import { Murmur2Partitioner, partitionOfKey } from './murmur2-partitioner.model';

export interface OutgoingMessage {
  key: string;
  value: Buffer | string;
  /** A null value is a header sent without one (length -1), as a dead letter copies it from the message it keeps. */
  headers?: Record<string, string | Buffer | null>;
}

/** What `sendEnvelopes` needs: the contracts' Envelope or any EnvelopeOf<…> fits. */
export interface EnvelopeLike {
  id: string;
  type: string;
  version: number;
  accountId: string;
  occurredAt: string;
  data: object;
  streamVersion?: number;
}

/**
 * Most bytes one produce request carries for one partition. kafkajs puts all of a call's messages for a partition
 * in one record batch, and the broker refuses a batch over its `message.max.bytes` (1 MiB by default) with a
 * non-retriable MESSAGE_TOO_LARGE: a relay retrying such a batch from its checkpoint would stall forever. Half
 * the broker's default keeps every batch well under it.
 */
export const DEFAULT_MAX_SEND_BYTES = 512 * 1024;
/** The partition a keyed message goes to. */
export type PartitionOf = (key: string) => number;
/** murmur2, as the Java client: the producer's partitioner, and the one chunkBySize's estimate must agree with. */
const PARTITIONER = Murmur2Partitioner;
/** What a record costs beyond its key, value and headers (length fields, offsets, timestamps), rounded up. */
const RECORD_OVERHEAD_BYTES = 64;

/**
 * Idempotent producer: the broker dedupes retried batches (producer id + sequence numbers), so a retry after a
 * lost ack never writes a message twice, and with one request in flight per broker the order per partition
 * survives retries. acks=-1: a send resolves only once every in-sync replica has the messages.
 *
 * After a send that failed, the next send goes through a new kafkajs producer (a new producer id). kafkajs moves a
 * partition's sequence number on only when a send succeeds, so after a failure whose batch the broker did append
 * (its answer was lost or came too late) the next batch would reuse the number: the broker takes it for a
 * duplicate of the appended one, drops it and answers success, and a message that was acknowledged is gone.
 */
export class KafkaProducer {
  private producer: Producer;
  private connecting: Promise<void> | undefined;
  /** Per topic: the partitioner over its partition count, and when the count was asked (see partitionerFor). */
  private readonly partitioners = new Map<string, { askedAt: number; partitioner: Promise<PartitionOf> }>();
  private readonly partitionCountTtlMs: number;
  /** Sends asked for while one is under way, in order: they go together as the next one (see `send`). */
  private readonly waiting: QueuedSend[] = [];
  private sending = false;
  /** Without batching: the last send asked for, which the next one waits for (see `inTurn`). */
  private turn: Promise<unknown> = Promise.resolve();
  /** The sends under way, and with batching the loop sending what waits: `disconnect` waits for them. */
  private readonly underWay = new Set<Promise<unknown>>();

  private readonly maxSendBytes: number;
  private readonly batchConcurrentSends: boolean;
  /** Sends that failed in a row (a send of several callers counts once), since when, and the last; reset by a send that succeeds. */
  private failing: { sends: number; since: number; lastAt: number; lastError: string } | undefined;

  constructor(
    private readonly kafka: Kafka,
    options: KafkaProducerOptions = {},
  ) {
    this.maxSendBytes = options.maxSendBytes ?? DEFAULT_MAX_SEND_BYTES;
    this.batchConcurrentSends = options.batchConcurrentSends ?? false;
    this.partitionCountTtlMs = options.partitionCountTtlMs ?? PARTITION_COUNT_TTL_MS;
    this.producer = this.newProducer();
  }

  private newProducer(): Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // A send to a topic that does not exist fails: on a broker that creates topics on demand it would otherwise be
      // acknowledged into a new, empty topic (a deleted one come back) that no consumer's stored offset points into.
      allowAutoTopicCreation: false,
      // Explicit so kafkajs does not warn about its v2 default change.
      createPartitioner: PARTITIONER,
    });
  }

  /** Retires a producer whose send failed (see the class comment); sends already under way on it finish there. */
  private retire(failed: Producer): void {
    if (this.producer !== failed) return; // another failed send replaced it already
    this.producer = this.newProducer();
    this.connecting = undefined;
    void failed.disconnect().catch(() => undefined);
  }

  /** Safe to call from several owners (an app and its consumers share one producer). */
  connect(): Promise<void> {
    this.connecting ??= this.producer.connect().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    return this.connecting;
  }

  /**
   * Sends in order, one at a time (see `inTurn`). With `batchConcurrentSends`, the sends asked for meanwhile, to
   * the same topic, go together as the next one, in the order they were asked for (natural batching: no timer, so an
   * idle producer sends at once). Each resolves when its messages are acknowledged, with the metadata of the send
   * that carried them. When a send that carried several fails, each of them is sent again alone, in order, and fails
   * or succeeds by itself: a partition that cannot take messages fails only the callers that wrote to it (those
   * sent again may be written twice, as after any retried send; their readers dedupe by id). But when it failed
   * because the cluster cannot be reached (no connection, a request that timed out), every one of them fails with it
   * at once: sent again one by one, each would wait out the same failure in turn (the last of fifty callers answered
   * after fifty failed sends). A partition's own refusal (NOT_ENOUGH_REPLICAS …) still fails only its callers.
   */
  send(topic: string, messages: OutgoingMessage[]): Promise<RecordMetadata[]> {
    if (messages.length === 0) return Promise.resolve([]);
    if (!this.batchConcurrentSends) return this.tracked(this.inTurn(() => this.sendNow(topic, messages)));
    return new Promise((resolve, reject) => {
      this.waiting.push({ topic, messages, resolve, reject });
      if (!this.sending) void this.tracked(this.sendWaiting());
    });
  }

  /**
   * `work` once every send asked for before it has settled. Sends never overlap: kafkajs numbers a partition's batches
   * when a send starts and takes the number back when it fails, so a send that went out while another was failing
   * could reuse its number; if the broker had appended the failed one (its answer lost), it takes the other for a
   * duplicate, drops it and answers success. In turn, a send after a failure goes through the new producer (`retire`).
   */
  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const turn = this.turn.then(work, work);
    this.turn = turn.catch(() => undefined);
    return turn;
  }

  /** `work`, counted as under way until it settles (whether it resolves or rejects). */
  private tracked<T>(work: Promise<T>): Promise<T> {
    const settled: Promise<unknown> = work.then(
      () => this.underWay.delete(settled),
      () => this.underWay.delete(settled),
    );
    this.underWay.add(settled);
    return work;
  }

  private async sendWaiting(): Promise<void> {
    this.sending = true;
    while (this.waiting.length > 0) {
      const { topic } = this.waiting[0];
      const count = this.waiting.findIndex((queued) => queued.topic !== topic);
      const together = this.waiting.splice(0, count < 0 ? this.waiting.length : count);
      const failure = await this.sendTogether(topic, together);
      if (failure === undefined) continue;
      if (together.length === 1 || isUnreachable(failure.error)) {
        for (const queued of together) queued.reject(failure.error);
      } else {
        for (const queued of together) await this.sendNow(topic, queued.messages).then(queued.resolve, queued.reject);
      }
    }
    this.sending = false;
  }

  /** The one send that carried them all: each caller resolved when it succeeded, else its error (nobody rejected yet). */
  private async sendTogether(topic: string, together: QueuedSend[]): Promise<{ error: unknown } | undefined> {
    try {
      const metadata = await this.sendNow(topic, together.flatMap((queued) => queued.messages));
      for (const queued of together) queued.resolve(metadata);
      return undefined;
    } catch (error) {
      return { error };
    }
  }

  /**
   * Readiness of a service whose work is to produce: throws a NotReadyError while sends keep failing (`afterSends` in
   * a row, failing for at least `afterMs`, the last within `afterMs`), naming the last error; a send that succeeds ends
   * it. Sends retried by the caller count too, so a cluster that answers metadata requests but takes no writes
   * (in-sync replicas missing, a principal without WRITE) shows here, where the metadata check cannot see it. A pod
   * taken out of service gets no requests, so sends nothing: `afterMs` after its last failure it is ready again, takes
   * requests, and is out again at its next failure if the cluster still takes nothing (never shut out for good).
   */
  checkFlowing({ afterSends = 3, afterMs = 30_000 }: { afterSends?: number; afterMs?: number } = {}): void {
    const failing = this.failing;
    if (!failing || failing.sends < afterSends || failing.lastAt - failing.since < afterMs || Date.now() - failing.lastAt > afterMs) return;
    throw new NotReadyError(`Kafka sends failing: ${failing.sends} in a row since ${new Date(failing.since).toISOString()}: ${failing.lastError}`, {
      failedSends: failing.sends,
      since: new Date(failing.since).toISOString(),
      lastError: failing.lastError,
    });
  }

  /**
   * In chunks that carry at most maxSendBytes for any one partition, one after the other: a later chunk goes only
   * once the earlier one is acknowledged, so per-partition order holds and a failure leaves no gap after it. Almost
   * every send is one chunk; only a burst for a few keys is split.
   */
  private async sendNow(topic: string, messages: OutgoingMessage[]): Promise<RecordMetadata[]> {
    const producer = this.producer;
    const metadata: RecordMetadata[] = [];
    try {
      await this.connect(); // failing too counts as a failed send
      for (const chunk of chunkBySize(messages, this.maxSendBytes, await this.partitionerFor(topic))) {
        // kafkajs writes a null header value as length -1 (its encoder's writeVarIntBytes), though its types leave null out.
        metadata.push(...(await producer.send({ topic, acks: -1, messages: chunk as Message[] })));
      }
    } catch (error) {
      this.retire(producer);
      const lastError = (error as Error)?.message ?? String(error);
      const now = Date.now();
      this.failing = { sends: (this.failing?.sends ?? 0) + 1, since: this.failing?.since ?? now, lastAt: now, lastError };
      throw error;
    }
    this.failing = undefined;
    return metadata;
  }

  /**
   * Keyed by account id, so one account's messages stay in order on one partition. `headers`: the same for every
   * message (a request's trace context), or per envelope (the relay's, each event's own).
   */
  sendEnvelopes(topic: string, envelopes: EnvelopeLike[], headers?: Record<string, string> | ((envelope: EnvelopeLike, index: number) => Record<string, string> | undefined)): Promise<RecordMetadata[]> {
    return this.send(
      topic,
      envelopes.map((envelope, index) => {
        const own = typeof headers === 'function' ? headers(envelope, index) : headers;
        return own ? { key: envelope.accountId, value: serializeEnvelope(envelope), headers: own } : { key: envelope.accountId, value: serializeEnvelope(envelope) };
      }),
    );
  }

  /**
   * The producer's own partitioner over the topic's partition count, asked again once it is older than
   * `partitionCountTtlMs`: partitions added to a live topic put keys the old count kept apart on one partition, whose
   * produce request could then pass the broker's limit (MESSAGE_TOO_LARGE, sent again for ever). Not knowing the count
   * (metadata unavailable) we count every message against one partition: smaller chunks, never too large ones.
   */
  private partitionerFor(topic: string): Promise<PartitionOf> {
    const cached = this.partitioners.get(topic);
    if (cached && Date.now() - cached.askedAt < this.partitionCountTtlMs) return cached.partitioner;
    const partitioner = topicPartitionCount(this.kafka, topic).then(
      (count) => keyPartitioner(count),
      () => {
        this.partitioners.delete(topic);
        return () => 0;
      },
    );
    this.partitioners.set(topic, { askedAt: Date.now(), partitioner });
    return partitioner;
  }

  /**
   * Sends what waits first (also what was asked for while it waited), and lets every send under way be acknowledged:
   * a waiting send that went after the disconnect would connect a producer nobody closes, and kafkajs fails one under
   * way ("The producer is disconnected"). A send asked for once the disconnect is under way connects again; owners
   * stop sending first (an app closes its HTTP server and consumers before its producer).
   */
  async disconnect(): Promise<void> {
    while (this.underWay.size > 0) await Promise.all([...this.underWay]);
    if (!this.connecting) return;
    this.connecting = undefined;
    await this.producer.disconnect();
  }
}

export interface KafkaProducerOptions {
  /** Most bytes one produce request carries for one partition (DEFAULT_MAX_SEND_BYTES). */
  maxSendBytes?: number;
  /** Concurrent sends go together (see `send`): for many small concurrent callers (usage-ingest's requests). */
  batchConcurrentSends?: boolean;
  /** How long a topic's partition count is taken as known before it is asked again (PARTITION_COUNT_TTL_MS). */
  partitionCountTtlMs?: number;
}

/**
 * kafkajs's own metadata age (its `metadataMaxAge` default, 5 minutes): its routing learns a new partition count at most
 * that late, and so does the size estimate, neither systematically ahead of the other. Setting kafkajs's to a minute
 * instead cost the relay ~15-25% of the ledger's end-to-end rate in the bench (Kafka's CPU per usage doubled), so the
 * estimate follows kafkajs's rather than the other way round.
 */
export const PARTITION_COUNT_TTL_MS = 300_000;

interface QueuedSend {
  topic: string;
  messages: OutgoingMessage[];
  resolve: (metadata: RecordMetadata[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Splits messages, in order, into runs that carry at most maxBytes for any one partition (a message bigger than
 * that is alone in its run). Without partitionOf, every message counts against the same partition.
 */
export function chunkBySize(messages: OutgoingMessage[], maxBytes: number, partitionOf: PartitionOf = () => 0): OutgoingMessage[][] {
  const chunks: OutgoingMessage[][] = [];
  let chunk: OutgoingMessage[] = [];
  let bytesByPartition = new Map<number, number>();
  for (const message of messages) {
    const size = sizeOf(message);
    const partition = partitionOf(message.key);
    let bytes = bytesByPartition.get(partition) ?? 0;
    if (bytes > 0 && bytes + size > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      bytesByPartition = new Map();
      bytes = 0;
    }
    chunk.push(message);
    bytesByPartition.set(partition, bytes + size);
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** The producer's partitioner (PARTITIONER) for keyed messages on a topic of `count` partitions. */
export function keyPartitioner(count: number): PartitionOf {
  return (key) => partitionOfKey(key, count);
}

function sizeOf(message: OutgoingMessage): number {
  let bytes = RECORD_OVERHEAD_BYTES + Buffer.byteLength(message.key) + Buffer.byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) bytes += Buffer.byteLength(name) + (value === null ? 0 : Buffer.byteLength(value));
  return bytes;
}

/** kafkajs errors of a cluster that cannot be reached, as the error or (after kafkajs's retries) its cause. */
const UNREACHABLE = new Set(['KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSBrokerNotFound', 'KafkaJSRequestTimeoutError', 'KafkaJSMetadataNotLoaded']);

/** Whether a send failed for want of the cluster (no connection, no answer), not a partition's refusal. */
export function isUnreachable(error: unknown): boolean {
  for (let current = error, depth = 0; typeof current === 'object' && current !== null && depth < 5; depth++) {
    const { name, originalError, cause } = current as { name?: unknown; originalError?: unknown; cause?: unknown };
    if (typeof name === 'string' && UNREACHABLE.has(name)) return true;
    current = originalError ?? cause;
  }
  return false;
}

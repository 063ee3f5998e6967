import { Partitioners, type Kafka, type Producer, type RecordMetadata } from 'kafkajs';
import { serializeEnvelope } from '@tally/contracts';

export interface OutgoingMessage {
  key: string;
  value: Buffer | string;
  headers?: Record<string, string | Buffer>;
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
 * Largest share of one send we hand kafkajs at once. kafkajs puts all of a call's messages for one partition in
 * one record batch, and the broker refuses a batch over its `message.max.bytes` (1 MiB by default) with a
 * non-retriable MESSAGE_TOO_LARGE: a relay retrying such a batch from its checkpoint would stall forever. Half
 * the broker's default keeps every batch well under it whatever the keys.
 */
export const DEFAULT_MAX_SEND_BYTES = 512 * 1024;
/** What a record costs beyond its key, value and headers (length fields, offsets, timestamps), rounded up. */
const RECORD_OVERHEAD_BYTES = 64;

/**
 * Idempotent producer: the broker dedupes retried batches (producer id + sequence numbers), so a retry after a
 * lost ack never writes a message twice, and with one request in flight per broker the order per partition
 * survives retries. acks=-1: a send resolves only once every in-sync replica has the messages.
 */
export class KafkaProducer {
  private readonly producer: Producer;
  private connecting: Promise<void> | undefined;

  constructor(
    kafka: Kafka,
    private readonly maxSendBytes = DEFAULT_MAX_SEND_BYTES,
  ) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // Explicit so kafkajs does not warn about its v2 default change; murmur2, same as the Java client.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
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
   * Sends in order, in chunks of at most maxSendBytes, one after the other: a later chunk goes only once the
   * earlier one is acknowledged, so per-partition order holds and a failure leaves no gap after it.
   */
  async send(topic: string, messages: OutgoingMessage[]): Promise<RecordMetadata[]> {
    if (messages.length === 0) return [];
    await this.connect();
    const metadata: RecordMetadata[] = [];
    for (const chunk of chunkBySize(messages, this.maxSendBytes)) {
      metadata.push(...(await this.producer.send({ topic, acks: -1, messages: chunk })));
    }
    return metadata;
  }

  /** Keyed by account id, so one account's messages stay in order on one partition. */
  sendEnvelopes(topic: string, envelopes: EnvelopeLike[]): Promise<RecordMetadata[]> {
    return this.send(
      topic,
      envelopes.map((envelope) => ({ key: envelope.accountId, value: serializeEnvelope(envelope) })),
    );
  }

  async disconnect(): Promise<void> {
    if (!this.connecting) return;
    this.connecting = undefined;
    await this.producer.disconnect();
  }
}

/** Splits messages, in order, into runs of at most maxBytes (a message bigger than that alone is one run). */
export function chunkBySize(messages: OutgoingMessage[], maxBytes: number): OutgoingMessage[][] {
  const chunks: OutgoingMessage[][] = [];
  let chunk: OutgoingMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = sizeOf(message);
    if (chunk.length > 0 && bytes + size > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(message);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

function sizeOf(message: OutgoingMessage): number {
  let bytes = RECORD_OVERHEAD_BYTES + Buffer.byteLength(message.key) + Buffer.byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
  return bytes;
}

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
 * Idempotent producer: the broker dedupes retried batches (producer id + sequence numbers), so a retry after a
 * lost ack never writes a message twice, and with one request in flight per broker the order per partition
 * survives retries. acks=-1: a send resolves only once every in-sync replica has the messages.
 */
export class KafkaProducer {
  private readonly producer: Producer;
  private connecting: Promise<void> | undefined;

  constructor(kafka: Kafka) {
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

  async send(topic: string, messages: OutgoingMessage[]): Promise<RecordMetadata[]> {
    if (messages.length === 0) return [];
    await this.connect();
    return this.producer.send({ topic, acks: -1, messages });
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

import { Kafka, logLevel, type RetryOptions, type SASLOptions } from 'kafkajs';
import { kafkaLogCreator, silentKafkaLogger, type KafkaLogger } from './kafka.logger';

export interface KafkaClientOptions {
  clientId: string;
  brokers: string[];
  /** TLS: `true` trusts Node's CAs, `{ ca }` the given PEM CAs (CommonConfig.kafkaConnection() builds both from config). */
  ssl?: true | { ca: string[] };
  /** SASL authentication (plain, scram-sha-256, scram-sha-512). */
  sasl?: SASLOptions;
  logger?: KafkaLogger;
  /** kafkajs log level; INFO by default (DEBUG is a firehose). */
  logLevel?: logLevel;
  /** Overrides the defaults below (e.g. a probe-only client that should give up at once). */
  retry?: RetryOptions;
  /** How long a request may wait for the broker's answer (30 s by default): a request path's client sets less. */
  requestTimeout?: number;
}

/**
 * The one place a kafkajs client is built, so every app gets the same retry and timeout policy.
 * Retries: ~0.3 s doubling to 30 s, 8 times (about a minute) — enough to ride out a broker restart or a
 * leader election without letting a dead cluster hang a request forever.
 */
export function createKafkaClient(options: KafkaClientOptions): Kafka {
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    ...(options.ssl ? { ssl: options.ssl } : {}),
    ...(options.sasl ? { sasl: options.sasl } : {}),
    connectionTimeout: 3_000,
    requestTimeout: options.requestTimeout ?? 30_000,
    retry: { initialRetryTime: 300, maxRetryTime: 30_000, retries: 8, factor: 0.2, multiplier: 2, ...options.retry },
    logLevel: options.logLevel ?? logLevel.INFO,
    logCreator: kafkaLogCreator(options.logger ?? silentKafkaLogger),
  });
}

import type { INestApplication, Provider } from '@nestjs/common';
import type { Kafka } from 'kafkajs';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { Topics } from '@tally/contracts';
import { KafkaBatchTransport, KafkaProducer } from '@tally/kafka';
import type { HealthChecks } from '@tally/shared';
import { LedgerConfig } from '../config/ledger.config';
import { DEAD_LETTER_PRODUCER, KAFKA_CLIENT, LOGGER, PG_POOL } from '../database/tokens.provider';

/** Readiness names of the ledger's Kafka consumers (unchanged since they were wired by hand). */
export const LedgerConsumerNames = {
  usage: 'usage-consumer',
  subscriptions: 'subscriptions-consumer',
  projection: 'projection-consumer',
} as const;

/**
 * The ledger's Kafka transport (libs/kafka's KafkaBatchTransport), one for the three Kafka controllers
 * (record-usage, apply-subscription-event, read-models' projection): config decides each pattern's topic, group
 * and dead-letter topic, and WORKERS which of them this process consumes (`commands`: usage and subscriptions;
 * `projection`). A provider, so readiness can ask it and main.ts connects it (`ledgerMicroservices`).
 */
export const ledgerKafkaTransportProvider: Provider = {
  provide: KafkaBatchTransport,
  inject: [LedgerConfig, KAFKA_CLIENT, PG_POOL, DEAD_LETTER_PRODUCER, LOGGER],
  useFactory: (config: LedgerConfig, kafka: Kafka, pool: Pool, producer: KafkaProducer, logger: Logger) =>
    new KafkaBatchTransport({
      kafka,
      pool,
      offsetsSchema: config.DATABASE_SCHEMA,
      // Its own producer, not the relay's: a dead-letter topic refusing writes must not hold up the ledger's events.
      producer,
      logger: logger.child({ component: 'kafka-consumers' }),
      defaults: {
        maxMessagesPerTransaction: config.CONSUMER_MAX_BATCH,
        partitionsConsumedConcurrently: config.CONSUMER_PARTITIONS_CONCURRENTLY,
        retry: { maxTimeoutMs: config.CONSUMER_RETRY_MAX_MS },
        stall: { afterAttempts: config.CONSUMER_STALL_ATTEMPTS, afterMs: config.CONSUMER_STALL_SECONDS * 1_000 },
      },
      bindings: {
        // usage-ingest's topic and the products' own (USAGE_TOPIC_NAMESPACES), one group; dead letters keep their x-original-topic.
        [Topics.usageEvents]: {
          name: LedgerConsumerNames.usage,
          topic: config.USAGE_EVENTS_TOPIC,
          extraTopics: [...config.usageTopicNamespaces().keys()],
          groupId: config.CONSUMER_GROUP,
          deadLetterTopic: config.USAGE_DLQ_TOPIC,
        },
        [Topics.subscriptionEvents]: {
          name: LedgerConsumerNames.subscriptions,
          topic: config.SUBSCRIPTION_EVENTS_TOPIC,
          groupId: `${config.CONSUMER_GROUP}-subscriptions`,
          deadLetterTopic: config.SUBSCRIPTION_DLQ_TOPIC,
        },
        // Written by the relay and the operator's replays alone: a replay of another group's dead letter is passed over.
        [Topics.ledgerEvents]: {
          name: LedgerConsumerNames.projection,
          topic: config.LEDGER_EVENTS_TOPIC,
          groupId: config.PROJECTION_GROUP,
          deadLetterTopic: config.LEDGER_DLQ_TOPIC,
          passOverOtherGroupsReplays: true,
        },
      },
      consumes: ({ topic }) => (topic === Topics.ledgerEvents ? config.runs('projection') : config.runs('commands')),
    }),
};

/** Readiness of the consumers this process runs (WORKERS), each under its own name: started (or joining in time), not stalled. */
export function ledgerConsumerChecks(config: LedgerConfig, transport: KafkaBatchTransport, which: 'commands' | 'projection'): HealthChecks {
  if (!config.runs(which)) return {};
  const names = which === 'commands' ? [LedgerConsumerNames.usage, LedgerConsumerNames.subscriptions] : [LedgerConsumerNames.projection];
  return Object.fromEntries(names.map((name) => [name, () => transport.checkFlowing(name)]));
}

/** The ledger's Nest microservices: its Kafka consumers through KafkaBatchTransport (see bootstrapHttpApp). */
export const ledgerMicroservices = (app: INestApplication): object[] => [{ strategy: app.get(KafkaBatchTransport) }];

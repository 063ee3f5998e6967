import type { Provider } from '@nestjs/common';
import type { Pool } from 'pg';
import { Topics } from '@tally/contracts';
import { KafkaBatchTransport, createKafkaClient } from '@tally/kafka';
import { LOGGER, type Logger } from '@tally/shared';
import { NotificationConfig } from '../config/notification.config';
import { PG_POOL } from '../database/database.provider';

/**
 * The service's Kafka transport, a provider so readiness can ask it (HEALTH_CHECKS) and main.ts can connect it
 * (`app.connectMicroservice({ strategy })`); config decides the topic, group and dead-letter topic of each pattern.
 */
export const ledgerEventsTransportProvider: Provider = {
  provide: KafkaBatchTransport,
  inject: [NotificationConfig, PG_POOL, LOGGER],
  useFactory: (config: NotificationConfig, pool: Pool, logger: Logger) =>
    new KafkaBatchTransport({
      kafka: createKafkaClient({ clientId: `${config.KAFKA_CLIENT_ID}-notification`, ...config.kafkaConnection(), logger: logger.child({ component: 'kafka' }) }),
      pool,
      offsetsSchema: config.DATABASE_SCHEMA,
      logger: logger.child({ component: 'ledger-events-consumer' }),
      bindings: {
        // Written by the ledger's relay and the operator's replays alone: a replay of another group's dead letter is passed over.
        [Topics.ledgerEvents]: { topic: config.LEDGER_EVENTS_TOPIC, groupId: config.KAFKA_GROUP_ID, deadLetterTopic: config.LEDGER_DEAD_LETTER_TOPIC, passOverOtherGroupsReplays: true },
      },
    }),
};

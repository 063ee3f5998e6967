import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Pool } from 'pg';
import { parseMessage, Topics } from '@tally/contracts';
import { BatchConsumer, KafkaProducer, createKafkaClient } from '@tally/kafka';
import type { Logger } from '@tally/shared';
import { BackgroundStart, CLOCK, type Clock } from '@tally/shared';
import { NotificationConfig } from '../config/notification.config';
import { PG_POOL } from '../database/database.providers';
import { LOGGER } from '@tally/shared';
import type { LedgerEvent } from './decide-notifications';
import { RecordAlertsHandler } from './record-alerts.handler';

/**
 * Consumes ledger.events.v1 with its own consumer group. Offsets are stored in PostgreSQL in the same
 * transaction as the deliveries (libs/kafka BatchConsumer); contract violations go to the ledger DLQ.
 */
@Injectable()
export class LedgerEventsKafkaConsumer implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly consumer: BatchConsumer<LedgerEvent>;
  private readonly producer: KafkaProducer;
  private readonly starting: BackgroundStart;

  constructor(
    config: NotificationConfig,
    @Inject(PG_POOL) pool: Pool,
    @Inject(CLOCK) clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    const kafka = createKafkaClient({ clientId: `${config.KAFKA_CLIENT_ID}-notification`, brokers: config.KAFKA_BROKERS, logger: logger.child({ component: 'kafka' }) });
    this.producer = new KafkaProducer(kafka);
    const handler = new RecordAlertsHandler({
      schema: config.DATABASE_SCHEMA, clock, maxRetryMs: config.WEBHOOK_MAX_RETRY_HOURS * 3_600_000, logger,
    });
    this.consumer = new BatchConsumer<LedgerEvent>({
      kafka,
      groupId: config.KAFKA_GROUP_ID,
      topics: [config.LEDGER_EVENTS_TOPIC],
      pool,
      offsetsSchema: config.DATABASE_SCHEMA,
      producer: this.producer,
      deadLetterTopic: () => config.LEDGER_DEAD_LETTER_TOPIC,
      // The registry is keyed by the contract topic; the configured name may differ (tests).
      parse: (_topic, message): LedgerEvent => parseMessage(Topics.ledgerEvents, message.value).envelope,
      handle: async ({ messages, tx }) => {
        await handler.apply(tx, messages.map((message) => message.value));
      },
      logger: logger.child({ component: 'ledger-events-consumer' }),
    });
    this.starting = new BackgroundStart({ name: 'ledger-events-consumer', start: () => this.consumer.start(), logger });
  }

  /** In the background: joining the group (30+ s after a crash) must not hold up the HTTP listener; a failed start is retried. */
  onApplicationBootstrap(): void {
    this.starting.begin();
  }

  async onModuleDestroy(): Promise<void> {
    this.starting.stop();
    await this.consumer.stop().catch((error: Error) => this.logger.warn({ err: error }, 'stopping the consumer failed'));
    await this.producer.disconnect().catch(() => undefined);
  }

  /** Readiness: started (or still joining), not stalled on a message, and Kafka answers. */
  async health(): Promise<void> {
    this.starting.check();
    await this.consumer.health();
  }
}

import { Module, type INestApplication, type Type } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { Pool } from 'pg';
import { KafkaBatchTransport } from '@tally/kafka';
import { MetricsModule } from '@tally/metrics';
import { CLOCK, HEALTH_CHECKS, HealthController, LOGGER, createLogger, postgresReady, systemClock, type Clock, type HealthChecks, type Logger } from '@tally/shared';
import { LedgerEventsKafkaController } from './alerts/ledger-events.kafka.controller';
import { ledgerEventsTransportProvider } from './alerts/ledger-events.kafka.transport';
import { RecordAlertsHandler } from './alerts/record-alerts.handler';
import { NotificationConfig } from './config/notification.config';
import { DatabaseLifecycle, PG_POOL, databaseProviders } from './database/database.provider';
import { DeliveryDispatcher } from './delivery/delivery.worker';
import { DeliveryLogHandler } from './delivery-log/delivery-log.handler';
import { DeliveryLogHttpController } from './delivery-log/delivery-log.http.controller';
import { NotificationSettingsHandler } from './settings/notification-settings.handler';
import { NotificationSettingsHttpController } from './settings/notification-settings.http.controller';
import { WebhookSecretBox } from './settings/webhook-secret.codec';
import { WebhookSecretResealer } from './settings/webhook-secret-reseal.worker';

export interface NotificationModuleOptions {
  config: NotificationConfig;
  /** Tests inject their own; the system clock otherwise. */
  clock?: Clock;
}

/**
 * Builds the app's root module around a given config and clock, so main.ts and the tests boot the very same
 * app (tests: a free port, a schema and topic of their own, a fast retry schedule).
 */
export function buildNotificationModule(options: NotificationModuleOptions): Type<unknown> {
  @Module({
    imports: [TerminusModule, MetricsModule.forRoot({ enabled: options.config.METRICS_ENABLED })],
    controllers: [HealthController, NotificationSettingsHttpController, DeliveryLogHttpController, LedgerEventsKafkaController],
    providers: [
      { provide: NotificationConfig, useValue: options.config },
      { provide: CLOCK, useValue: options.clock ?? systemClock },
      { provide: LOGGER, useValue: createLogger('notification', options.config.LOG_LEVEL) },
      ...databaseProviders,
      DatabaseLifecycle,
      { provide: WebhookSecretBox, useFactory: () => new WebhookSecretBox(options.config.webhookSecretKeys()) },
      WebhookSecretResealer,
      NotificationSettingsHandler,
      DeliveryLogHandler,
      {
        provide: RecordAlertsHandler,
        inject: [NotificationConfig, CLOCK, LOGGER],
        useFactory: (config: NotificationConfig, clock: Clock, logger: Logger) =>
          new RecordAlertsHandler({ schema: config.DATABASE_SCHEMA, clock, maxRetryMs: config.WEBHOOK_MAX_RETRY_HOURS * 3_600_000, logger }),
      },
      ledgerEventsTransportProvider,
      DeliveryDispatcher,
      {
        provide: HEALTH_CHECKS,
        inject: [PG_POOL, KafkaBatchTransport],
        // kafka: the transport listening, its consumer started (or still joining in time), not stalled, and Kafka answering.
        useFactory: (pool: Pool, transport: KafkaBatchTransport): HealthChecks => ({
          postgres: () => postgresReady(pool),
          kafka: () => transport.health(),
        }),
      },
    ],
  })
  class NotificationModule {}
  return NotificationModule;
}

/** The app's Nest microservices: ledger.events.v1 through libs/kafka's KafkaBatchTransport (see bootstrapHttpApp). */
export const notificationMicroservices = (app: INestApplication): object[] => [{ strategy: app.get(KafkaBatchTransport) }];

import { Module, type Type } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { Pool } from 'pg';
import { LedgerEventsKafkaConsumer } from './alerts/ledger-events.kafka.consumer';
import { CLOCK, HEALTH_CHECKS, HealthController, LOGGER, createLogger, systemClock, type Clock, type HealthChecks } from '@tally/shared';
import { NotificationConfig } from './config/notification.config';
import { DatabaseLifecycle, PG_POOL, databaseProviders } from './database/database.providers';
import { DeliveryDispatcher } from './delivery/delivery.dispatcher';
import { DeliveryLogHandler } from './delivery-log/delivery-log.handler';
import { DeliveryLogHttpController } from './delivery-log/delivery-log.http.controller';
import { NotificationSettingsHandler } from './settings/notification-settings.handler';
import { NotificationSettingsHttpController } from './settings/notification-settings.http.controller';

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
    imports: [TerminusModule],
    controllers: [HealthController, NotificationSettingsHttpController, DeliveryLogHttpController],
    providers: [
      { provide: NotificationConfig, useValue: options.config },
      { provide: CLOCK, useValue: options.clock ?? systemClock },
      { provide: LOGGER, useValue: createLogger('notification', options.config.LOG_LEVEL) },
      ...databaseProviders,
      DatabaseLifecycle,
      NotificationSettingsHandler,
      DeliveryLogHandler,
      LedgerEventsKafkaConsumer,
      DeliveryDispatcher,
      {
        provide: HEALTH_CHECKS,
        inject: [PG_POOL, LedgerEventsKafkaConsumer],
        useFactory: (pool: Pool, consumer: LedgerEventsKafkaConsumer): HealthChecks => ({
          postgres: () => pool.query('SELECT 1'),
          kafka: () => consumer.health(),
        }),
      },
    ],
  })
  class NotificationModule {}
  return NotificationModule;
}

import type { DataSourceOptions } from 'typeorm';
import { migrateServiceTakingTurns, serviceSession } from '@tally/shared';
import { createKafkaOffsetsMigration } from '@tally/kafka';
import type { NotificationConfig } from '../config/notification.config';
import { AccountCycleEntity } from './account-cycle.entity';
import { DeliveryEntity } from './delivery.entity';
import { createNotificationTablesMigration } from './migrations/1732400000000-notification-tables';
import { createDeliveriesOncePerEventMigration } from './migrations/1764500000000-deliveries-once-per-event';
import { createDeliveryTraceContextMigration } from './migrations/1764800000000-delivery-trace-context';
import { createDeliveriesSettledIndexMigration } from './migrations/1765900000000-deliveries-settled-index';
import { NotificationSettingsEntity } from './notification-settings.entity';

export const NOTIFICATION_ENTITIES = [NotificationSettingsEntity, DeliveryEntity, AccountCycleEntity];

/**
 * Migrations only, never synchronize; the migrations table lives in the service's own schema. The service's data
 * source runs none itself: migrateNotification does, before it starts.
 */
export function notificationDataSourceOptions(config: NotificationConfig): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.DATABASE_URL,
    schema: config.DATABASE_SCHEMA,
    entities: NOTIFICATION_ENTITIES,
    migrations: [
      createKafkaOffsetsMigration(config.DATABASE_SCHEMA),
      createNotificationTablesMigration(config.DATABASE_SCHEMA),
      createDeliveriesOncePerEventMigration(config.DATABASE_SCHEMA),
      createDeliveryTraceContextMigration(config.DATABASE_SCHEMA),
      createDeliveriesSettledIndexMigration(config.DATABASE_SCHEMA),
    ],
    migrationsTableName: 'migrations',
    migrationsRun: false,
    synchronize: false,
    extra: { max: config.poolMax(5), ...serviceSession('notification', config.poolLimits()) },
  };
}

/** Creates the schema if needed and applies pending migrations, replicas taking turns (migrateServiceTakingTurns). */
export function migrateNotification(config: NotificationConfig): Promise<void> {
  return migrateServiceTakingTurns('notification', config, notificationDataSourceOptions(config));
}

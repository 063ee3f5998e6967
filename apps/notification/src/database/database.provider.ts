import { Inject, Injectable, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { LOGGER, createServicePool, type Logger } from '@tally/shared';
import { NotificationConfig } from '../config/notification.config';
import { migrateNotification, notificationDataSourceOptions } from './data-source.provider';

/** The raw pg pool: the batch consumer's transactions and the dispatcher's FOR UPDATE SKIP LOCKED claims. */
export const PG_POOL = Symbol('PG_POOL');

export const databaseProviders: Provider[] = [
  {
    provide: PG_POOL,
    inject: [NotificationConfig, LOGGER],
    // A PostgreSQL restart must not end the process: lost connections are logged and replaced.
    useFactory: (config: NotificationConfig, logger: Logger) =>
      createServicePool(config.DATABASE_URL, config.poolMax(5), logger, 'notification', config.poolLimits()),
  },
  {
    provide: DataSource,
    inject: [NotificationConfig],
    useFactory: async (config: NotificationConfig) => {
      await migrateNotification(config);
      return new DataSource(notificationDataSourceOptions(config)).initialize();
    },
  },
];

/** Closes the connections last, after the consumer and dispatcher stopped (onModuleDestroy runs first). */
@Injectable()
export class DatabaseLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    private readonly dataSource: DataSource,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.dataSource.destroy().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}


import { DataSource } from 'typeorm';
import { loadConfig } from '@tally/shared';
import { sessionSettingsOf } from '@tally/testing';
import { NotificationConfig } from '../src/config/notification.config';
import { notificationDataSourceOptions } from '../src/database/data-source.provider';
import { testEnv } from './notification.harness';

describe("notification's PostgreSQL sessions", () => {
  it('carry its name in pg_stat_activity and run without JIT', async () => {
    const config = loadConfig(NotificationConfig, testEnv({ DATABASE_SCHEMA: 'notification_sessions' }));
    // Without its migrations: the session's parameters are the question, not the schema.
    expect(await sessionSettingsOf(new DataSource({ ...notificationDataSourceOptions(config), migrationsRun: false }))).toEqual({ name: 'tally-notification', jit: 'off' });
  });
});

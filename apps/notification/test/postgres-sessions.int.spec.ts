import { DataSource } from 'typeorm';
import { loadConfig } from '@tally/shared';
import { NotificationConfig } from '../src/config/notification.config';
import { notificationDataSourceOptions } from '../src/database/data-source.provider';
import { testEnv } from './notification.harness';

describe("notification's PostgreSQL sessions", () => {
  it('carry its name in pg_stat_activity and run without JIT', async () => {
    const config = loadConfig(NotificationConfig, testEnv({ DATABASE_SCHEMA: 'notification_sessions' }));
    // Without its migrations: the session's parameters are the question, not the schema.
    const db = await new DataSource({ ...notificationDataSourceOptions(config), migrationsRun: false }).initialize();
    try {
      const rows = await db.query(`select application_name as name, current_setting('jit') as jit from pg_stat_activity where pid = pg_backend_pid()`);
      expect(rows).toEqual([{ name: 'tally-notification', jit: 'off' }]);
    } finally {
      await db.destroy();
    }
  });
});

import { resolve } from 'node:path';
import { DataSource } from 'typeorm';
import { loadConfig } from '@tally/shared';
import { testDatabaseUrl, testKafkaBrokers } from '@tally/testing';
import { SubscriptionCycleConfig } from '../src/config/subscription-cycle.config';
import { dataSourceOptions } from '../src/database/data-source.provider';

describe("subscription-cycle's PostgreSQL sessions", () => {
  it('carry its name in pg_stat_activity and run without JIT', async () => {
    const config = loadConfig(SubscriptionCycleConfig, {
      DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: 'cycle_sessions', KAFKA_BROKERS: testKafkaBrokers().join(','), SUBSCRIPTION_EVENTS_TOPIC: 'subscription.events.sessions',
      PLANS_PATH: resolve(__dirname, '../../../config/plans.yaml'), API_KEYS: '[]',
    });
    // Without its migrations: the session's parameters are the question, not the schema.
    const db = await new DataSource({ ...dataSourceOptions(config), migrationsRun: false }).initialize();
    try {
      const rows = await db.query(`select application_name as name, current_setting('jit') as jit from pg_stat_activity where pid = pg_backend_pid()`);
      expect(rows).toEqual([{ name: 'tally-subscription-cycle', jit: 'off' }]);
    } finally {
      await db.destroy();
    }
  });
});

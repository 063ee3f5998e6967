import { resolve } from 'node:path';
import { DataSource } from 'typeorm';
import { loadConfig } from '@tally/shared';
import { sessionSettingsOf, testDatabaseUrl, testKafkaBrokers } from '@tally/testing';
import { SubscriptionCycleConfig } from '../src/config/subscription-cycle.config';
import { dataSourceOptions } from '../src/database/data-source.provider';

describe("subscription-cycle's PostgreSQL sessions", () => {
  it('carry its name in pg_stat_activity and run without JIT', async () => {
    const config = loadConfig(SubscriptionCycleConfig, {
      DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: 'cycle_sessions', KAFKA_BROKERS: testKafkaBrokers().join(','), SUBSCRIPTION_EVENTS_TOPIC: 'subscription.events.sessions',
      PLANS_PATH: resolve(__dirname, '../../../config/plans.yaml'), API_KEYS: '[]',
    });
    // Without its migrations: the session's parameters are the question, not the schema.
    expect(await sessionSettingsOf(new DataSource({ ...dataSourceOptions(config), migrationsRun: false }))).toEqual({ name: 'tally-subscription-cycle', jit: 'off' });
  });

  it('give up on a statement PostgreSQL has not answered within PG_QUERY_TIMEOUT_MS', async () => {
    const config = loadConfig(SubscriptionCycleConfig, {
      DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: 'cycle_sessions', KAFKA_BROKERS: testKafkaBrokers().join(','), SUBSCRIPTION_EVENTS_TOPIC: 'subscription.events.sessions',
      PLANS_PATH: resolve(__dirname, '../../../config/plans.yaml'), API_KEYS: '[]', PG_QUERY_TIMEOUT_MS: '1000',
    });
    const dataSource = await new DataSource({ ...dataSourceOptions(config), migrationsRun: false }).initialize();
    try {
      await expect(dataSource.query('SELECT pg_sleep(3)')).rejects.toThrow('Query read timeout');
    } finally {
      await dataSource.destroy();
    }
  });
});

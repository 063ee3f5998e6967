import { loadConfig } from '@tally/shared';
import { sessionSettingsOf, testDatabaseUrl, testKafkaBrokers } from '@tally/testing';
import { UsageIngestConfig } from '../src/config/usage-ingest.config';
import { createUsageIngestDataSource } from '../src/database/data-source.provider';

describe("usage-ingest's PostgreSQL sessions", () => {
  it('carry its name in pg_stat_activity and run without JIT', async () => {
    const config = loadConfig(UsageIngestConfig, {
      DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: 'ingest_sessions', KAFKA_BROKERS: testKafkaBrokers().join(','), USAGE_EVENTS_TOPIC: 'usage.events.sessions', API_KEYS: '[]',
    });
    expect(await sessionSettingsOf(createUsageIngestDataSource(config))).toEqual({ name: 'tally-usage-ingest', jit: 'off' });
  });
});

import { loadConfig } from '@tally/shared';
import { testDatabaseUrl, testKafkaBrokers } from '@tally/testing';
import { UsageIngestConfig } from '../src/config/usage-ingest.config';
import { createUsageIngestDataSource } from '../src/database/data-source.provider';

describe("usage-ingest's PostgreSQL sessions", () => {
  it('carry its name in pg_stat_activity and run without JIT', async () => {
    const config = loadConfig(UsageIngestConfig, {
      DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: 'ingest_sessions', KAFKA_BROKERS: testKafkaBrokers().join(','), USAGE_EVENTS_TOPIC: 'usage.events.sessions', API_KEYS: '[]',
    });
    const db = await createUsageIngestDataSource(config).initialize();
    try {
      const rows = await db.query(`select application_name as name, current_setting('jit') as jit from pg_stat_activity where pid = pg_backend_pid()`);
      expect(rows).toEqual([{ name: 'tally-usage-ingest', jit: 'off' }]);
    } finally {
      await db.destroy();
    }
  });
});

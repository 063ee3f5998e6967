import { randomUUID } from 'node:crypto';
import { ManualClock, createLogger, loadConfig } from '@tally/shared';
import { createTestSchema, testDatabaseUrl, testKafkaBrokers } from '@tally/testing';
import type { DataSource } from 'typeorm';
import { UsageIngestConfig } from '../src/config/usage-ingest.config';
import { createUsageIngestDataSource, migrateUsageIngest } from '../src/database/data-source.provider';
import { AcceptedUsageRetentionWorker } from '../src/usage/accepted-usage-retention/accepted-usage-retention.worker';

const NOW = new Date('2026-12-06T12:00:00.000Z');
const daysAgo = (days: number) => new Date(NOW.getTime() - days * 24 * 3600 * 1000).toISOString();

/**
 * accepted_usage gains a row per usage: without a retention it grows for ever, and with it every report's insert and
 * lookup. Ids older than ACCEPTED_USAGE_RETENTION_DAYS are forgotten in batches, and so are requests that old whose
 * produce never ended; younger ones, pending or not, stay.
 */
describe('accepted usage retention (PostgreSQL)', () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let db: DataSource;
  let config: UsageIngestConfig;

  beforeAll(async () => {
    schema = await createTestSchema('ingest_retention');
    config = loadConfig(UsageIngestConfig, {
      DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema.schema, KAFKA_BROKERS: testKafkaBrokers().join(','), API_KEYS: '[]',
      ACCEPTED_USAGE_RETENTION_DAYS: '30',
    });
    await migrateUsageIngest(config);
    db = await createUsageIngestDataSource(config).initialize();
  });

  afterAll(async () => {
    await db?.destroy();
    await schema?.drop();
  });

  it('forgets ids and unfinished requests older than the retention, in batches, and keeps the rest', async () => {
    const s = `"${schema.schema}"`;
    const stale = randomUUID();
    const fresh = randomUUID();
    await db.query(`INSERT INTO ${s}.ingest_requests (request_id, started_at) VALUES ($1, $2), ($3, $4)`, [stale, daysAgo(31), fresh, daysAgo(1)]);
    // 12,001 ids older than 30 days (more than two batches), one of them still pending on the stale request; 3 younger.
    await db.query(
      `INSERT INTO ${s}.accepted_usage (account_id, usage_id, fingerprint, accepted_at, request_id)
       SELECT 'acct-old', 'u-' || i, 'f', $1::timestamptz - i * interval '1 second', CASE WHEN i = 1 THEN $2::uuid END FROM generate_series(1, 12001) AS i`,
      [daysAgo(30), stale],
    );
    await db.query(
      `INSERT INTO ${s}.accepted_usage (account_id, usage_id, fingerprint, accepted_at, request_id)
       VALUES ('acct-new', 'u-1', 'f', $1, NULL), ('acct-new', 'u-2', 'f', $2, $3), ('acct-new', 'u-3', 'f', $4, NULL)`,
      [daysAgo(29), daysAgo(1), fresh, daysAgo(0)],
    );
    const worker = new AcceptedUsageRetentionWorker(db, config, new ManualClock(NOW), createLogger('test', 'silent'));
    // Before the pass, what is overdue shows, less one pass interval (10 min by default: a row waits that long as a
    // matter of course): the stale request is a day past the 30 days, the oldest id 12,001 s.
    const interval = config.ACCEPTED_USAGE_PRUNE_INTERVAL_MS / 1000;
    expect(interval).toBe(600);
    expect(await worker.overdueSeconds()).toBe(24 * 3600 - interval);
    await db.query(`DELETE FROM ${s}.ingest_requests WHERE request_id = $1`, [stale]);
    expect(await worker.overdueSeconds()).toBe(12_001 - interval);
    await db.query(`INSERT INTO ${s}.ingest_requests (request_id, started_at) VALUES ($1, $2)`, [stale, daysAgo(31)]);

    expect(await worker.prune()).toEqual({ usage: 12_001, requests: 1 });
    expect(await worker.overdueSeconds()).toBe(0);

    const left = await db.query(`SELECT account_id, usage_id FROM ${s}.accepted_usage ORDER BY usage_id`);
    expect(left).toEqual([1, 2, 3].map((i) => ({ account_id: 'acct-new', usage_id: `u-${i}` })));
    expect(await db.query(`SELECT request_id FROM ${s}.ingest_requests`)).toEqual([{ request_id: fresh }]);
    expect(await worker.prune()).toEqual({ usage: 0, requests: 0 });
  });

  it('has an index by age to find what to forget without reading the table, built valid, and its migration runs again as a no-op', async () => {
    const index = `SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass('"${schema.schema}".accepted_usage_accepted_at_idx')`;
    expect(await db.query(index)).toEqual([{ valid: true }]);
    await db.undoLastMigration({ transaction: 'each' });
    expect(await db.query(index)).toEqual([]);
    expect(await db.runMigrations({ transaction: 'each' })).toHaveLength(1);
    expect(await db.query(index)).toEqual([{ valid: true }]);
  });
});

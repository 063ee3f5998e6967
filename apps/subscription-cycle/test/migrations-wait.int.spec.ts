import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'pg';
import { systemClock } from '@tally/shared';
import { createTestSchema, testDatabaseUrl, waitFor } from '@tally/testing';
import { startApp, testTopic, type TestApp } from './subscription-cycle.harness';

/**
 * A migration takes what it takes: one waiting for the transactions of the replicas still running the older version,
 * or altering a large table. Under the service's client-side query timeout (PG_QUERY_TIMEOUT_MS) each boot attempt
 * gave up, and the next (TypeORM's retries, or the pod's restart) asked again while the statement given up on still
 * waited in the server: one more session queued for the table's exclusive lock per attempt, and a migration longer
 * than the timeout never completed. Real PostgreSQL and Kafka; the service's own boot.
 */
describe('subscription-cycle migrations (PostgreSQL)', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let pool: Pool;
  let running: TestApp | undefined;

  beforeAll(async () => {
    schema = await createTestSchema('sc_migrate_wait');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });
  });

  afterAll(async () => {
    await running?.app.close();
    await pool?.end();
    await schema?.drop();
  });

  it('run without the query timeout: one session waits for the lock, the migration completes, the service starts', async () => {
    const options = { schema: schema.schema, topic: testTopic(), clock: systemClock, env: { PG_QUERY_TIMEOUT_MS: '1000', LOG_LEVEL: 'silent' } };
    await (await startApp(options)).app.close();
    // The last migration pending again, as on a database of the version before it.
    await pool.query(`ALTER TABLE "${schema.schema}".subscriptions DROP COLUMN plan_from_cycle`);
    await pool.query(`DELETE FROM "${schema.schema}".subscription_cycle_migrations WHERE name = 'PlanFromCycle1766300000000'`);

    const older = await pool.connect(); // a replica of the older version, writing subscriptions meanwhile
    try {
      await older.query('BEGIN');
      await older.query(`LOCK TABLE "${schema.schema}".subscriptions IN ROW EXCLUSIVE MODE`);
      const booting = startApp(options).then((app) => (running = app));
      booting.catch(() => undefined);
      await sleep(5_000); // five query timeouts
      // Still trying: the ALTER waits for the lock (up to the migrations' lock timeout at a time, then again).
      await waitFor(async () => {
        const { rows } = await pool.query<{ waiting: number }>(
          `SELECT count(*)::int AS waiting FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1`,
          [`%ALTER TABLE "${schema.schema}".subscriptions%`],
        );
        return rows[0].waiting === 1;
      }, 15_000, 50);
      await older.query('COMMIT');
      await booting;
    } finally {
      older.release();
    }
    const { rows } = await pool.query(`SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'subscriptions' AND column_name = 'plan_from_cycle'`, [schema.schema]);
    expect(rows).toHaveLength(1);
  }, 90_000);
});

import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'pg';
import { createTestSchema, testDatabaseUrl } from '@tally/testing';
import { bootApp, ledgerTopic, type RunningApp } from './notification.harness';

/**
 * A migration takes what it takes: an index built on a deliveries table of years of rows, or one waiting for the
 * transactions of the replicas still running the older version. Under the service's client-side query timeout
 * (PG_QUERY_TIMEOUT_MS) such a boot failed, the pod restarted and tried again, and the rollout never ended. Real
 * PostgreSQL and Kafka; the service's own boot.
 */
describe('notification migrations (PostgreSQL)', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let ledger: Awaited<ReturnType<typeof ledgerTopic>>;
  let pool: Pool;
  let running: RunningApp | undefined;

  beforeAll(async () => {
    schema = await createTestSchema('notification_migrate_wait');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });
    ledger = await ledgerTopic();
  });

  afterAll(async () => {
    await running?.app.close();
    await ledger?.close();
    await pool?.end();
    await schema?.drop();
  });

  it('run without the query timeout: a migration waiting longer for a lock still completes and the service starts', async () => {
    const settings = { DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: ledger.group, PG_QUERY_TIMEOUT_MS: '1000' };
    await (await bootApp(settings)).app.close();
    // The last migration pending again, as on a database of the version before it.
    await pool.query(`DROP INDEX "${schema.schema}".deliveries_settled`);
    await pool.query(`DELETE FROM "${schema.schema}".migrations WHERE name = 'DeliveriesSettledIndex1765900000000'`);

    const older = await pool.connect(); // a replica of the older version, writing deliveries meanwhile
    try {
      await older.query('BEGIN');
      await older.query(`LOCK TABLE "${schema.schema}".deliveries IN ROW EXCLUSIVE MODE`);
      const booting = bootApp(settings).then((app) => (running = app));
      booting.catch(() => undefined);
      await sleep(3_000); // three query timeouts
      await older.query('COMMIT');
      await booting;
    } finally {
      older.release();
    }
    const { rows } = await pool.query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND indexname = 'deliveries_settled'`, [schema.schema]);
    expect(rows).toHaveLength(1);
  }, 60_000);
});

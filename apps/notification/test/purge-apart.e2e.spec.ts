import { Pool, type PoolClient } from 'pg';
import { createTestSchema, testDatabaseUrl, uniqueSuffix, waitFor } from '@tally/testing';
import { WRITER_KEY, bootApp, call, cycleStarted, ledgerTopic, produceAndApply, startSmtp, thresholdCrossed, type RunningApp } from './notification.harness';

/**
 * The purge of old settled deliveries (DELIVERY_RETENTION_DAYS) runs at start-up and hourly, batch after batch until
 * none is left: on a table holding years of them, or behind a lock, that takes a while, and alerts must go out
 * meanwhile. Here the purge is held by a row lock on an old delivery while an alert comes. Real PostgreSQL, broker, SMTP.
 */
describe('the purge of old deliveries does not hold up sending (e2e)', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let ledger: Awaited<ReturnType<typeof ledgerTopic>>;
  let pool: Pool;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let running: RunningApp | undefined;
  let locker: PoolClient | undefined;

  beforeAll(async () => {
    schema = await createTestSchema('notification_purge_apart');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 3 });
    ledger = await ledgerTopic();
    smtp = await startSmtp();
  });

  afterAll(async () => {
    await locker?.query('ROLLBACK').catch(() => undefined);
    locker?.release();
    await running?.app.close();
    await ledger?.close();
    await smtp?.close();
    await pool?.end();
    await schema?.drop();
  });

  const boot = () =>
    bootApp({ DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: ledger.group, SMTP_HOST: '127.0.0.1', SMTP_PORT: String(smtp.port) });

  it('an alert is emailed while the start-up purge waits on a locked old delivery', async () => {
    running = await boot(); // migrates the schema
    await running.app.close();
    running = undefined;
    const s = `"${schema.schema}"`;
    const { rows: [old] } = await pool.query<{ id: string }>(
      `INSERT INTO ${s}.deliveries (id, notification_id, account_id, notification_type, dedupe_key, channel, event_id, content, state, attempts, attempt_log, next_attempt_at, give_up_at, created_at, updated_at)
       VALUES (gen_random_uuid(), 'ntf-old', 'acc-old', 'low_credit', 'k-old', 'email', 'e-old', '{}'::jsonb, 'delivered', 1, '[]'::jsonb, NULL, now(), now() - interval '400 days', now() - interval '400 days')
       RETURNING id`,
    );
    locker = await pool.connect();
    await locker.query('BEGIN');
    await locker.query(`SELECT id FROM ${s}.deliveries WHERE id = $1 FOR UPDATE`, [old.id]); // the purge's DELETE waits here

    running = await boot(); // its first purge starts at once, and waits
    const accountId = `acc-${uniqueSuffix()}`;
    expect((await call(running.baseUrl, 'PUT', `/v1/accounts/${accountId}/notification-settings`, WRITER_KEY, { email: `${accountId}@example.com` })).status).toBe(200);
    await produceAndApply(pool, schema.schema, ledger, [cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 20, '150')]);
    await waitFor(async () => smtp.messages.some((mail) => mail.to && !Array.isArray(mail.to) && mail.to.value[0]?.address === `${accountId}@example.com`), 15_000);

    const { rows: [waiting] } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM ${s}.deliveries%'`,
    );
    expect(waiting.n).toBe(1); // the purge was still held meanwhile
    await locker.query('ROLLBACK');
    locker.release();
    locker = undefined;
    await waitFor(async () => (await pool.query(`SELECT 1 FROM ${s}.deliveries WHERE id = $1`, [old.id])).rowCount === 0, 15_000); // and then done
  });
});

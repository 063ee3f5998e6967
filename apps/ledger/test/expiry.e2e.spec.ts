import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'pg';
import { startServiceProcess, testDatabaseUrl, waitFor, type ServiceProcess } from '@tally/testing';
import { API_KEY, createTestSchema, createTopics, json, ledgerTestSettings } from './ledger.harness';

/**
 * A hold past its TTL is released, and a promotional grant past its expiry expired, by the ledger itself, with no
 * other activity on the account: the balance read model, the history and the event stream show one HoldReleased
 * (reason 'expired') or CreditsExpired, also when the ledger was killed before the hold expired, and a restart
 * afterwards releases nothing twice. Real process, HTTP, Kafka and PostgreSQL.
 */
describe('expired holds and grants are resolved by themselves', () => {
  const { env, topics } = ledgerTestSettings();
  let schema: string;
  let drop: () => Promise<void>;
  let pool: Pool;
  let ledger: ServiceProcess | undefined;
  let ledgerEnv: Record<string, string>;

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('ledger_hold_expiry'));
    await createTopics(topics);
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });
    ledgerEnv = { ...env, DATABASE_SCHEMA: schema };
    ledger = await startServiceProcess('ledger', ledgerEnv);
  });

  afterAll(async () => {
    await ledger?.kill('SIGKILL');
    await pool?.end();
    await drop?.();
  });

  const api = () => json((ledger as ServiceProcess).base);
  const releasedEvents = async (accountId: string, holdId: string) =>
    (
      await pool.query<{ reason: string }>(
        `select data->>'reason' as reason from "${schema}".events where stream_id = $1 and type = 'HoldReleased' and data->>'holdId' = $2`,
        [`account-${accountId}`, holdId],
      )
    ).rows;
  const balanceWhen = (accountId: string, ok: (body: Record<string, any>) => boolean, timeoutMs = 15_000) =>
    waitFor(async () => {
      const { status, body } = await api().get(`/v1/accounts/${accountId}/balance`);
      return status === 200 && ok(body) ? body : undefined;
    }, timeoutMs, 200);

  it('a 2 s hold is released within seconds of expiry, once, shown in the balance and the history', async () => {
    const accountId = 'hold-expiry-a';
    expect((await api().post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'g', amount: '10' })).status).toBe(201);
    const placed = await api().post(`/v1/accounts/${accountId}/authorizations`, { amount: '4', hold: { holdId: 'stream-a', ttlSeconds: 2 } });
    expect(placed).toMatchObject({ status: 200, body: { allowed: true, available: '6' } });
    await balanceWhen(accountId, (body) => body.held === '4' && body.available === '6');
    const placedAt = Date.now();

    // Nothing else happens to the account: the ledger releases the hold by itself.
    const released = await balanceWhen(accountId, (body) => body.held === '0' && body.available === '10');
    expect(Date.now() - placedAt).toBeLessThan(12_000);
    expect(released).toMatchObject({ held: '0', available: '10' });

    const history = await waitFor(async () => {
      const { status, body } = await api().get(`/v1/accounts/${accountId}/transactions?type=HoldReleased`);
      return status === 200 && body.items.length > 0 ? body.items : undefined;
    }, 10_000);
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ type: 'HoldReleased', amount: '4', details: { holdId: 'stream-a', reason: 'expired' } });
    expect(await releasedEvents(accountId, 'stream-a')).toEqual([{ reason: 'expired' }]);
  });

  it('a promotional grant is expired within seconds of its expiry, once, shown in the balance and the history', async () => {
    const accountId = 'grant-expiry-a';
    const expiresAt = new Date(Date.now() + 2_000).toISOString();
    expect((await api().post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'lasting', amount: '2' })).status).toBe(201);
    expect((await api().post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'promo', amount: '3', expiresAt })).status).toBe(201);
    await balanceWhen(accountId, (body) => body.available === '5');

    // Nothing else happens to the account: the ledger expires the grant by itself.
    await balanceWhen(accountId, (body) => body.available === '2' && body.byKind.promotional === '2');
    expect(Date.now() - Date.parse(expiresAt)).toBeLessThan(10_000);
    const history = await waitFor(async () => {
      const { status, body } = await api().get(`/v1/accounts/${accountId}/transactions?type=CreditsExpired`);
      return status === 200 && body.items.length > 0 ? body.items : undefined;
    }, 10_000);
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ type: 'CreditsExpired', amount: '-3', balanceAfter: '2', details: { bucketId: 'grant:promo', reason: 'expired' } });
    const { rows } = await pool.query(`select count(*)::int as n from "${schema}".expiries where account_id = $1`, [accountId]);
    expect(rows[0].n).toBe(0);
  });

  // A grant whose first attempt (refused, or its answer lost) named an earlier expiresAt left its wake-up row at that
  // earlier time (the schedule keeps the first). If the bucket is empty then (held or spent) and its credits come back
  // before its own expiry, that row must still wake the ledger at the grant's own expiry.
  it("a grant empty when an earlier wake-up comes is still expired at its own expiry once its credits are back", async () => {
    const accountId = 'grant-expiry-early-row';
    const expiresAt = new Date(Date.now() + 15_000).toISOString();
    const earlyAt = Date.now() + 4_000;
    await pool.query(`insert into "${schema}".expiries (account_id, kind, item_id, due_at) values ($1, 'credits', 'grant:promo-early', $2)`, [
      accountId, new Date(earlyAt).toISOString(),
    ]);
    expect((await api().post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'promo-early', amount: '3', expiresAt })).status).toBe(201);
    expect(await api().post(`/v1/accounts/${accountId}/authorizations`, { amount: '3', hold: { holdId: 'all-of-it', ttlSeconds: 60 } })).toMatchObject({ status: 200, body: { available: '0' } });
    // The early wake-up comes and goes while the bucket is empty (all of it held): its row moves to the grant's expiry.
    expect(Date.now()).toBeLessThan(earlyAt); // the hold was placed before the early wake-up
    await waitFor(async () => {
      const { rows } = await pool.query<{ due_at: Date }>(`select due_at from "${schema}".expiries where account_id = $1 and item_id = 'grant:promo-early'`, [accountId]);
      return rows[0] && rows[0].due_at.getTime() === Date.parse(expiresAt) ? true : undefined;
    }, 10_000, 200);
    const release = await fetch(`${(ledger as ServiceProcess).base}/v1/accounts/${accountId}/holds/all-of-it`, { method: 'DELETE', headers: { authorization: `Bearer ${API_KEY}` } });
    expect(release.status).toBe(200);
    await balanceWhen(accountId, (body) => body.available === '3');

    // Nothing else happens to the account: the ledger expires the grant by itself at its own expiry.
    await balanceWhen(accountId, (body) => body.available === '0' && body.byKind.promotional === '0', 25_000);
    expect(Date.now() - Date.parse(expiresAt)).toBeLessThan(10_000);
  });

  // The wake-up row is written before the hold's append; the worker reads only committed state. A hold whose append
  // waited (its stream row locked by a consumer's transaction, a slow database) past its short TTL was not there when
  // its row came due: the row was removed as resolved, the hold committed after, and nothing released it.
  it('a hold whose append commits after its own expiry is still released by the ledger', async () => {
    const accountId = 'hold-expiry-slow-append';
    expect((await api().post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'g', amount: '10' })).status).toBe(201);
    const locker = await pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`select 1 from "${schema}".streams where stream_id = $1 for update`, [`account-${accountId}`]);
      const placing = api().post(`/v1/accounts/${accountId}/authorizations`, { amount: '4', hold: { holdId: 'slow', ttlSeconds: 1 } });
      await sleep(3_500); // the row comes due, and the worker looks, while the append waits for the stream
      await locker.query('COMMIT');
      expect(await placing).toMatchObject({ status: 200, body: { allowed: true } });
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
    }
    // Nothing else happens to the account: the ledger releases the hold by itself.
    await waitFor(async () => ((await releasedEvents(accountId, 'slow')).length > 0 ? true : undefined), 20_000, 200);
    expect(await releasedEvents(accountId, 'slow')).toEqual([{ reason: 'expired' }]);
    await balanceWhen(accountId, (body) => body.held === '0' && body.available === '10');
  });

  it('a hold that expires while the ledger is down is released after the restart, and no restart releases it twice', async () => {
    const accountId = 'hold-expiry-b';
    expect((await api().post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'g', amount: '5' })).status).toBe(201);
    const placed = await api().post(`/v1/accounts/${accountId}/authorizations`, { amount: '5', hold: { holdId: 'stream-b', ttlSeconds: 3 } });
    expect(placed).toMatchObject({ status: 200, body: { available: '0' } });
    await balanceWhen(accountId, (body) => body.held === '5' && body.available === '0');
    await (ledger as ServiceProcess).kill('SIGKILL');
    ledger = undefined;
    expect(await releasedEvents(accountId, 'stream-b')).toEqual([]);
    // Let the hold expire while no ledger runs.
    await sleep(Math.max(0, Date.parse(placed.body.hold.expiresAt) + 300 - Date.now()));

    ledger = await startServiceProcess('ledger', ledgerEnv);
    const restartedAt = Date.now();
    await waitFor(async () => (await releasedEvents(accountId, 'stream-b')).length > 0, 10_000, 100);
    expect(Date.now() - restartedAt).toBeLessThan(10_000);
    // The read model follows once the projection has rejoined its group (after a kill -9: the dead member's session timeout).
    await balanceWhen(accountId, (body) => body.held === '0' && body.available === '5', 90_000);
    expect(await releasedEvents(accountId, 'stream-b')).toEqual([{ reason: 'expired' }]);

    // Another restart: the expiry index and the decider agree there is nothing left to release.
    await (ledger as ServiceProcess).kill('SIGTERM');
    ledger = await startServiceProcess('ledger', ledgerEnv);
    await api().post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'g2', amount: '1' });
    await balanceWhen(accountId, (body) => body.available === '6');
    expect(await releasedEvents(accountId, 'stream-b')).toEqual([{ reason: 'expired' }]);
    expect(await releasedEvents('hold-expiry-a', 'stream-a')).toEqual([{ reason: 'expired' }]);
  }, 180_000);
});

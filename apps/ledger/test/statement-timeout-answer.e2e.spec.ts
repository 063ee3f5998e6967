import type { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { testDatabaseUrl } from '@tally/testing';
import { API_KEY, createTestSchema, createTopics, json, ledgerTestSettings, startLedger, waitForAvailable } from './ledger.harness';

/**
 * A statement PostgreSQL does not answer within PG_QUERY_TIMEOUT_MS (a frozen server, a dead network path, or, as
 * here, a row another session keeps locked) is a dependency that cannot serve now: the command is answered 503 with
 * Retry-After and a stable code, to retry with the same idempotency key, never a 500. pg reports it as a plain
 * Error('Query read timeout'), with no SQLSTATE or socket code. Real PostgreSQL and HTTP.
 */
describe('a command whose statement PostgreSQL does not answer in time', () => {
  const { env, topics } = ledgerTestSettings();
  let app: INestApplication | undefined;
  let api: ReturnType<typeof json>;
  let base: string;
  let schema: string;
  let dropSchema: (() => Promise<void>) | undefined;
  const locker = new Client({ connectionString: testDatabaseUrl() });

  beforeAll(async () => {
    await createTopics(topics, 1);
    const created = await createTestSchema('ledger_query_timeout');
    ({ schema } = created);
    dropSchema = created.drop;
    ({ app, base } = await startLedger({ ...env, PG_QUERY_TIMEOUT_MS: '1500' }, schema));
    api = json(base);
    await locker.connect();
  }, 60_000);

  afterAll(async () => {
    await locker.query('ROLLBACK').catch(() => undefined);
    await locker.end();
    await app?.close();
    await dropSchema?.();
  });

  it('answers 503 with Retry-After and a stable code, and the retry with the same key is applied once', async () => {
    expect((await api.post('/v1/accounts/acct-locked/grants', { reason: 'test grant', idempotencyKey: 'first', amount: '1' })).status).toBe(201);
    await locker.query('BEGIN');
    await locker.query(`SELECT 1 FROM "${schema}".streams WHERE stream_id = $1 FOR UPDATE`, ['account-acct-locked']);
    const response = await fetch(`${base}/v1/accounts/acct-locked/grants`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ reason: 'test grant', idempotencyKey: 'second', amount: '2' }),
    });
    const body = (await response.json()) as { code?: string };
    expect({ status: response.status, code: body.code, retryAfter: response.headers.get('retry-after') !== null }).toEqual({
      status: 503,
      code: expect.stringMatching(/^(DEPENDENCY_UNAVAILABLE|ACCOUNT_BUSY)$/),
      retryAfter: true,
    });
    await locker.query('ROLLBACK');

    const retried = await api.post('/v1/accounts/acct-locked/grants', { reason: 'test grant', idempotencyKey: 'second', amount: '2' });
    expect([200, 201]).toContain(retried.status);
    await waitForAvailable(api, 'acct-locked', '3');
  }, 60_000);
});

/**
 * Every connection of the pool busy (here, each read waiting on a table another session keeps locked; in production, a
 * slow database under load): a request that needs one waits at most PG_CONNECT_TIMEOUT_MS for it and is answered 503 with
 * Retry-After, instead of waiting, unanswered and unbounded, in pg-pool's queue while its client gives up and retries.
 * An HTTP-only ledger (WORKERS=none), so that the pool is the requests' alone. Real PostgreSQL and HTTP.
 */
describe('a request that finds every pooled connection busy', () => {
  const { env, topics } = ledgerTestSettings();
  const POOL = 3;
  let app: INestApplication | undefined;
  let base: string;
  let schema: string;
  let dropSchema: (() => Promise<void>) | undefined;
  const locker = new Client({ connectionString: testDatabaseUrl() });
  /** Outside the locker's transaction, whose view of pg_stat_activity stays as it was at its first read. */
  const observer = new Client({ connectionString: testDatabaseUrl() });
  const grant = (accountId: string, idempotencyKey: string) =>
    fetch(`${base}/v1/accounts/${accountId}/grants`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ reason: 'test grant', idempotencyKey, amount: '1' }),
    });
  const read = (path: string) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${API_KEY}` } });

  beforeAll(async () => {
    await createTopics(topics, 1);
    const created = await createTestSchema('ledger_pool_busy');
    ({ schema } = created);
    dropSchema = created.drop;
    ({ app, base } = await startLedger({ ...env, WORKERS: 'none', PG_POOL_MAX: String(POOL), PG_QUERY_TIMEOUT_MS: '30000', PG_CONNECT_TIMEOUT_MS: '1000' }, schema));
    await Promise.all([locker.connect(), observer.connect()]);
  }, 60_000);

  afterAll(async () => {
    await locker.query('ROLLBACK').catch(() => undefined);
    await Promise.all([locker.end(), observer.end()]);
    await app?.close();
    await dropSchema?.();
  });

  it('answers 503 with Retry-After once PG_CONNECT_TIMEOUT_MS has passed, stays ready, and serves again once connections are free', async () => {
    // Load, not an outage: connections were coming back whole a moment ago.
    expect((await grant('acct-1', 'first')).status).toBe(201);
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE "${schema}".balances IN ACCESS EXCLUSIVE MODE`);
    // Balance reads, each holding a pooled connection while it waits for the table.
    const waiting: Promise<Response>[] = [];
    for (let i = 1; i <= POOL; i++) {
      waiting.push(read(`/v1/accounts/reader-${i}/balance`));
      await waitForLockWaits(i);
    }

    const response = await grant('acct-2', 'first');
    const body = (await response.json()) as { code?: string };
    expect({ status: response.status, code: body.code, retryAfter: response.headers.get('retry-after') !== null }).toEqual({
      status: 503,
      code: 'DEPENDENCY_UNAVAILABLE',
      retryAfter: true,
    });

    // Busy is not down: readiness does not queue behind the requests (every pod of a loaded service would leave the
    // Service at once, and clients get connection errors instead of 503s).
    const ready = await fetch(`${base}/health/ready`);
    expect({ status: ready.status, postgres: ((await ready.json()) as { details?: Record<string, { status: string }> }).details?.postgres }).toEqual({
      status: 200,
      postgres: { status: 'up' },
    });

    await locker.query('ROLLBACK');
    // The reads that held the connections are answered too (404: accounts never seen).
    expect((await Promise.all(waiting)).map((answer) => answer.status)).toEqual(Array.from({ length: POOL }, () => 404));
    expect((await grant('acct-2', 'first')).status).toBe(201);
  }, 60_000);

  /** Until `count` sessions of this test's ledger wait for a lock. */
  async function waitForLockWaits(count: number): Promise<void> {
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 50))) {
      const { rows } = await observer.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'tally-ledger:none' AND wait_event_type = 'Lock' AND position($1 IN query) > 0`,
        [schema],
      );
      if (rows[0].n >= count) return;
    }
    throw new Error(`fewer than ${count} of the ledger's sessions came to wait for the lock`);
  }
});

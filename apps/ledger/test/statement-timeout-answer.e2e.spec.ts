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

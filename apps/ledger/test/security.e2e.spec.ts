import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@tally/shared';
import { createTestSchema, startServiceProcess, waitFor, type ServiceProcess } from '@tally/testing';
import { createTopics, ledgerTestSettings } from './ledger.harness';

const KEYS = { ops: 'security-ops-key', slow: 'security-slow-key', other: 'security-other-key' };
const ACCOUNT = 'acct-security';
/** The JSON API's policy (libs/shared/src/http/http-app.provider.ts). */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * Issue 18, item 5 (and item 3's required reason on grants) on real service processes: per-key rate limits (429 with
 * Retry-After, recovery after that wait, other keys and the probes untouched), security headers on API answers with
 * the credits page keeping its own frameable CSP, /docs behind a key (DOCS_ACCESS=key), and a grant's reason and
 * actor in the history.
 */
describe('rate limits, security headers, /docs access and grant reasons', () => {
  const { env, topics } = ledgerTestSettings();
  let ledger: ServiceProcess;
  let ingest: ServiceProcess;
  const drops: (() => Promise<void>)[] = [];
  const pageDir = mkdtempSync(join(tmpdir(), 'tally-portal-page-'));

  const call = (base: string, path: string, bearer?: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, {
      ...init,
      headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers },
    });
  const post = (path: string, body: object, bearer = KEYS.ops) => call(ledger.base, path, bearer, { method: 'POST', body: JSON.stringify(body) });

  beforeAll(async () => {
    writeFileSync(join(pageDir, 'index.html'), '<!doctype html><title>credits</title>');
    await createTopics(topics);
    const [ledgerSchema, ingestSchema] = await Promise.all([createTestSchema('ledger_security'), createTestSchema('ingest_security')]);
    drops.push(ledgerSchema.drop, ingestSchema.drop);
    const common = {
      ...env,
      API_KEYS: JSON.stringify([
        { name: 'ops', sha256: hashApiKey(KEYS.ops), scopes: ['admin'] },
        { name: 'slow-reader', sha256: hashApiKey(KEYS.slow), scopes: ['accounts:read', 'usage:write'] },
        { name: 'other-reader', sha256: hashApiKey(KEYS.other), scopes: ['accounts:read', 'usage:write'] },
      ]),
      // One key limited hard (2 at once, then one every 2 s); the others keep the harness's high default.
      // Portal tokens are limited per account (`portal:<accountId>`), whichever token of that account calls.
      RATE_LIMITS: JSON.stringify({ 'slow-reader': { perSecond: 0.5, burst: 2 }, [`portal:${ACCOUNT}`]: { perSecond: 0.5, burst: 1 } }),
      DOCS_ACCESS: 'key',
      HSTS_MAX_AGE_SECONDS: '600',
    };
    [ledger, ingest] = await Promise.all([
      startServiceProcess('ledger', { ...common, DATABASE_SCHEMA: ledgerSchema.schema, PORTAL_PAGE_DIR: pageDir }, 120_000),
      // Without a key: 3 at once per address, then one every 10 s (the probes must never be counted).
      startServiceProcess('usage-ingest', { ...common, DATABASE_SCHEMA: ingestSchema.schema, RATE_LIMIT_ANONYMOUS_PER_SECOND: '0.1', RATE_LIMIT_ANONYMOUS_BURST: '3' }, 120_000),
    ]);
  });

  afterAll(async () => {
    await Promise.all([ledger?.kill(), ingest?.kill()]);
    for (const drop of drops) await drop();
    rmSync(pageDir, { recursive: true, force: true });
  });

  it('a key over its limit gets 429 with Retry-After and recovers after that wait; another key and the probes are unaffected', async () => {
    expect((await post(`/v1/accounts/${ACCOUNT}/grants`, { idempotencyKey: 'funds', amount: '10', reason: 'test funds' })).status).toBe(201);
    const balance = `/v1/accounts/${ACCOUNT}/balance`;
    await waitFor(async () => (await call(ledger.base, balance, KEYS.ops)).status === 200, 30_000);
    // The burst (2) goes through, counted down in RateLimit-Remaining.
    const first = await call(ledger.base, balance, KEYS.slow);
    expect(first.status).not.toBe(429);
    expect(first.headers.get('ratelimit-limit')).toBe('2');
    let refused: Response | undefined;
    for (let i = 0; i < 5 && !refused; i++) {
      const response = await call(ledger.base, balance, KEYS.slow);
      if (response.status === 429) refused = response;
    }
    if (!refused) throw new Error('the slow key was never refused');
    const body = (await refused.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringMatching(/retry after \d+ s/) });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 2).toBe(true);
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');

    // Meanwhile: another key reads the same account, and the probes and the scrape answer, many times over.
    for (let i = 0; i < 10; i++) expect((await call(ledger.base, balance, KEYS.other)).status).toBe(200);
    for (let i = 0; i < 10; i++) {
      for (const path of ['/health/live', '/health/ready', '/metrics']) expect((await call(ledger.base, path)).status).toBe(200);
    }

    // After the wait it was told (not a fixed sleep), the same key is served again.
    await new Promise((done) => setTimeout(done, retryAfter * 1000));
    expect((await call(ledger.base, balance, KEYS.slow)).status).toBe(200);
  });

  it('limits portal tokens per account: a second token of the same account shares the bucket, the account\'s API keys do not', async () => {
    const mint = async () => ((await (await post(`/v1/accounts/${ACCOUNT}/portal-tokens`, {})).json()) as { token: string }).token;
    const [first, second] = [await mint(), await mint()];
    await waitFor(async () => (await call(ledger.base, `/v1/accounts/${ACCOUNT}/balance`, KEYS.ops)).status === 200, 30_000);
    expect((await call(ledger.base, `/v1/accounts/${ACCOUNT}/balance`, first)).status).toBe(200);
    const refused = await call(ledger.base, '/v1/portal/session', second);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ code: 'RATE_LIMITED' });
    expect((await call(ledger.base, `/v1/accounts/${ACCOUNT}/balance`, KEYS.other)).status).toBe(200);
  });

  it('limits requests without a valid key by address (a 429 instead of the 401), never the probes; on usage-ingest too', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await call(ingest.base, '/v1/usage-events', 'not-a-key', { method: 'POST', body: '{}' })).status);
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(statuses.slice(3)).toEqual([429, 429]);
    for (let i = 0; i < 10; i++) expect((await call(ingest.base, '/health/live')).status).toBe(200);
    // A key is not an address: the same client with a valid key is served.
    const usage = { id: 'sec-u1', accountId: ACCOUNT, occurredAt: new Date().toISOString(), feature: 'chat', model: 'gpt-4o', inputTokens: 10, outputTokens: 10 };
    const accepted = await call(ingest.base, '/v1/usage-events', KEYS.other, { method: 'POST', body: JSON.stringify(usage) });
    expect(accepted.status).toBe(202);
    // A slow key on another service has a bucket of its own there.
    expect((await call(ingest.base, '/v1/usage-events', KEYS.slow, { method: 'POST', body: JSON.stringify({ ...usage, id: 'sec-u2' }) })).status).toBe(202);
  });

  it('API answers carry the security headers, errors included; the credits page keeps its own CSP and may be framed', async () => {
    for (const response of [await call(ledger.base, `/v1/accounts/${ACCOUNT}/balance`, KEYS.ops), await call(ledger.base, '/v1/accounts/nobody/balance', KEYS.ops), await call(ingest.base, '/health/live')]) {
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('content-security-policy')).toBe(API_CSP);
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      expect(response.headers.get('strict-transport-security')).toBe('max-age=600; includeSubDomains');
    }
    const page = await call(ledger.base, '/portal/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/frame-ancestors \*/);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(page.headers.get('x-frame-options')).toBeNull();
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('DOCS_ACCESS=key: /docs and /docs-json refuse a request without a valid key and serve one with any key', async () => {
    // Percent-encoded spellings reach the same routes (Fastify decodes before it routes): refused the same way.
    for (const path of ['/docs', '/docs-json', '/%64ocs-json', '/%64ocs', '/docs%2Djson']) {
      const refused = await call(ledger.base, path);
      expect(refused.status).toBe(401);
      expect(await refused.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect((await call(ledger.base, path, 'wrong-key')).status).toBe(401);
    }
    const document = await call(ledger.base, '/docs-json', KEYS.other);
    expect(document.status).toBe(200);
    const openapi = (await document.json()) as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    expect(openapi.openapi).toMatch(/^3\./);
    expect(openapi.paths['/v1/accounts/{accountId}/balance']?.get?.responses['429']).toBeDefined();
    const page = await call(ledger.base, '/docs', KEYS.other);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    // Swagger UI runs its own scripts: no API CSP there, but no framing either.
    expect(page.headers.get('content-security-policy')).toBeNull();
    expect(page.headers.get('x-frame-options')).toBe('DENY');
  });

  it('a grant without a reason is refused naming the field; a reason and the actor show in the history', async () => {
    for (const body of [{ idempotencyKey: 'no-reason', amount: '1' }, { idempotencyKey: 'blank-reason', amount: '1', reason: '  ' }, { idempotencyKey: 'long-reason', amount: '1', reason: 'x'.repeat(501) }]) {
      const refused = await post(`/v1/accounts/${ACCOUNT}/grants`, body);
      expect(refused.status).toBe(400);
      const error = (await refused.json()) as { code: string; details: { field: string }[] };
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.details.map((issue) => issue.field)).toContain('reason');
    }
    const reason = `goodwill for ticket 4711: ${'a long explanation '.repeat(20)}`.slice(0, 500);
    expect((await post(`/v1/accounts/${ACCOUNT}/grants`, { idempotencyKey: 'goodwill', amount: '2', reason })).status).toBe(201);
    // The same key again: the same reason is a repeat; another one, even past the 194 characters the source keeps, is not.
    expect((await post(`/v1/accounts/${ACCOUNT}/grants`, { idempotencyKey: 'goodwill', amount: '2', reason })).status).toBe(200);
    const other = await post(`/v1/accounts/${ACCOUNT}/grants`, { idempotencyKey: 'goodwill', amount: '2', reason: `${reason.slice(0, 400)} (edited)` });
    expect({ status: other.status, code: ((await other.json()) as { code: string }).code }).toEqual({ status: 409, code: 'IDEMPOTENCY_CONFLICT' });
    let entry: Record<string, any> | undefined;
    await waitFor(async () => {
      const history = (await (await call(ledger.base, `/v1/accounts/${ACCOUNT}/transactions`, KEYS.ops)).json()) as { items: Record<string, any>[] };
      entry = history.items.find((item) => item.type === 'CreditsGranted' && item.details?.grantId === 'grant:goodwill');
      return entry !== undefined;
    }, 30_000);
    expect(entry).toMatchObject({ actor: 'ops', details: { reason, kind: 'promotional' } });
  });
});

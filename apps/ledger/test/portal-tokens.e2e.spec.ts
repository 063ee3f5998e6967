import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { hashApiKey, PortalTokenCodec, type PortalGrant } from '@tally/shared';
import { createTestSchema, startServiceProcess, TEST_PORTAL_TOKEN_SECRET, testKafkaBrokers, waitFor, type ServiceProcess } from '@tally/testing';
import { createTopics, ledgerTestSettings } from './ledger.harness';

const KEYS = {
  ops: 'portal-ops-key', reader: 'portal-reader-key', reporter: 'portal-reporter-key', minter: 'portal-minter-key',
  scopedMinter: 'portal-scoped-minter-key', rotatingMinter: 'portal-rotating-minter-key', rotatedMinter: 'portal-rotated-minter-key',
};
const ALLOWED_ORIGIN = 'https://app.example';
const ACCOUNT = 'acct-portal';
const OTHER = 'acct-portal-other';

/**
 * Issue 16, item 3: portal tokens and CORS on the real ledger process (its consumers, relay and projection on the
 * real Kafka and PostgreSQL). A product's backend (portal:mint) mints a token for one account; the token reads that
 * account's balance, live stream, history, usage and export, and nothing else; expired, tampered and other-account
 * tokens are refused; browsers from the configured origins get CORS headers, on the streamed answers too.
 */
describe('portal tokens and CORS on the ledger', () => {
  const { id, env, topics } = ledgerTestSettings();
  let ledger: ServiceProcess;
  let disabled: ServiceProcess;
  /** The same ledger's database and secret after a restart with changed API_KEYS (HTTP only). */
  let keysChanged: ServiceProcess;
  let producer: Producer;
  const drops: (() => Promise<void>)[] = [];

  const call = (base: string, path: string, bearer: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${bearer}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers } });
  const answer = async (response: Response) => ({ status: response.status, body: (await response.json()) as Record<string, any> });
  const get = async (path: string, bearer: string) => answer(await call(ledger.base, path, bearer));
  const post = async (path: string, bearer: string, body: object, base = ledger.base) => answer(await call(base, path, bearer, { method: 'POST', body: JSON.stringify(body) }));
  const mint = (accountId: string, body: object, key = KEYS.minter) => post(`/v1/accounts/${accountId}/portal-tokens`, key, body);
  /** A token signed by the test itself with the ledger's secret (or another), for what the ledger must refuse. */
  const signed = (grant: Partial<PortalGrant>, secret = TEST_PORTAL_TOKEN_SECRET) =>
    new PortalTokenCodec({ secret }).sign({
      accountId: ACCOUNT, tokenId: 'test-token', issuedAt: new Date(Date.now() - 7_200_000), expiresAt: new Date(Date.now() + 3_600_000), rights: ['read'], links: {}, ...grant,
    });

  beforeAll(async () => {
    await createTopics(topics);
    const [schema, disabledSchema] = await Promise.all([createTestSchema('ledger_portal'), createTestSchema('ledger_portal_off')]);
    drops.push(schema.drop, disabledSchema.drop);
    const kept = [
      { name: 'ops', sha256: hashApiKey(KEYS.ops), scopes: ['admin'] },
      { name: 'reader', sha256: hashApiKey(KEYS.reader), scopes: ['accounts:read'] },
      { name: 'reporter', sha256: hashApiKey(KEYS.reporter), scopes: ['usage:write'] },
    ];
    const apiKeys = JSON.stringify([
      ...kept,
      { name: 'product-backend', sha256: hashApiKey(KEYS.minter), scopes: ['portal:mint'] },
      { name: 'scoped-backend', sha256: hashApiKey(KEYS.scopedMinter), scopes: ['portal:mint'], namespaces: ['acct-portal'] },
      { name: 'rotating-backend', sha256: hashApiKey(KEYS.rotatingMinter), scopes: ['portal:mint'] },
    ]);
    // After the change: product-backend removed, scoped-backend narrowed to OTHER, rotating-backend given a new key.
    const changedKeys = JSON.stringify([
      ...kept,
      { name: 'scoped-backend', sha256: hashApiKey(KEYS.scopedMinter), scopes: ['portal:mint'], namespaces: [OTHER] },
      { name: 'rotating-backend', sha256: hashApiKey(KEYS.rotatedMinter), scopes: ['portal:mint'] },
    ]);
    const common = { ...env, API_KEYS: apiKeys, PORTAL_ALLOWED_ORIGINS: `${ALLOWED_ORIGIN},http://localhost:5173`, PORTAL_PAGE_BASE_URL: 'https://credits.example/' };
    [ledger, keysChanged, disabled] = await Promise.all([
      // PORTAL_TOKEN_SECRET: the harness's TEST_PORTAL_TOKEN_SECRET.
      startServiceProcess('ledger', { ...common, DATABASE_SCHEMA: schema.schema }, 120_000),
      startServiceProcess('ledger', { ...common, DATABASE_SCHEMA: schema.schema, API_KEYS: changedKeys, WORKERS: 'none' }, 120_000),
      // No secret: portal tokens off. HTTP only, on topics and groups of its own, so it takes nothing from the first.
      startServiceProcess('ledger', { ...common, DATABASE_SCHEMA: disabledSchema.schema, CONSUMER_GROUP: `ledger-off-${id}`, PROJECTION_GROUP: `projections-off-${id}`, WORKERS: 'none', PORTAL_TOKEN_SECRET: undefined }, 120_000),
    ]);
    producer = new Kafka({ clientId: 'portal-e2e', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    // Two accounts with a balance; ACCOUNT also with one usage event (gpt-4o, 300,000 output tokens = 3 credits).
    for (const accountId of [ACCOUNT, OTHER]) expect((await post(`/v1/accounts/${accountId}/grants`, KEYS.ops, { reason: 'test grant', idempotencyKey: 'welcome', amount: '10' })).status).toBe(201);
    await producer.send({
      topic: env.USAGE_EVENTS_TOPIC,
      messages: [{ key: ACCOUNT, value: JSON.stringify({ id: 'portal-u1', type: 'UsageRecorded', version: 1, accountId: ACCOUNT, occurredAt: new Date().toISOString(), data: { feature: 'chat', model: 'gpt-4o', inputTokens: 0, outputTokens: 300_000 } }) }],
    });
    await waitFor(async () => (await get(`/v1/accounts/${ACCOUNT}/balance`, KEYS.ops)).body.available === '7', 30_000);
    await waitFor(async () => (await get(`/v1/accounts/${OTHER}/balance`, KEYS.ops)).status === 200, 30_000);
  }, 180_000);

  afterAll(async () => {
    await producer?.disconnect();
    for (const service of [ledger, disabled, keysChanged]) await service?.kill();
    for (const drop of drops) await drop();
  });

  describe('minting', () => {
    it('refuses keys without portal:mint (accounts:read, usage:write) with 403', async () => {
      for (const key of [KEYS.reader, KEYS.reporter]) {
        expect(await mint(ACCOUNT, {}, key)).toEqual({ status: 403, body: expect.objectContaining({ code: 'FORBIDDEN', details: { requiredScope: 'portal:mint' } }) });
      }
    });

    it('mints for a portal:mint key: 201 with the token, its expiry, rights, signed links, zone and the page URL', async () => {
      const before = Date.now();
      const links = { checkoutUrl: 'https://chat.example/billing/checkout?pack=1000', upgradeUrl: 'https://chat.example/billing/plans' };
      const { status, body } = await mint(ACCOUNT, { ttlSeconds: 600, purchase: true, ...links, timeZone: 'Europe/Berlin' });
      expect(status).toBe(201);
      expect(body).toEqual({
        token: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/), accountId: ACCOUNT, expiresAt: expect.any(String), rights: ['read', 'purchase'], links, timeZone: 'Europe/Berlin',
        pageUrl: `https://credits.example/portal/#token=${body.token}`,
      });
      const expiresIn = Date.parse(body.expiresAt) - before;
      expect(expiresIn).toBeGreaterThan(598_000);
      expect(expiresIn).toBeLessThanOrEqual(601_000);
      // The page configures itself from the session the token grants.
      expect(await get('/v1/portal/session', body.token)).toEqual({ status: 200, body: { accountId: ACCOUNT, expiresAt: body.expiresAt, rights: ['read', 'purchase'], links, timeZone: 'Europe/Berlin' } });
    });

    it('defaults to one hour, read only, no links, no zone', async () => {
      const { status, body } = await mint(ACCOUNT, {});
      expect(status).toBe(201);
      expect(body).toEqual(expect.objectContaining({ rights: ['read'], links: {} }));
      expect(body.timeZone).toBeUndefined();
      expect(Math.abs(Date.parse(body.expiresAt) - Date.now() - 3_600_000)).toBeLessThan(5_000);
      expect((await get('/v1/portal/session', body.token)).body).toEqual({ accountId: ACCOUNT, expiresAt: body.expiresAt, rights: ['read'], links: {} });
    });

    it('refuses a bad body naming each field, and an account with no balance with 404 ACCOUNT_NOT_FOUND', async () => {
      const refused = await mint(ACCOUNT, { ttlSeconds: 59, purchase: 'yes', checkoutUrl: 'javascript:alert(1)', upgradeUrl: `https://x.example/${'a'.repeat(2048)}`, timeZone: '+02:00' });
      expect(refused.status).toBe(400);
      expect(refused.body.details.map((issue: { field: string }) => issue.field).sort()).toEqual(['checkoutUrl', 'purchase', 'timeZone', 'ttlSeconds', 'upgradeUrl']);
      expect((await mint(ACCOUNT, { ttlSeconds: 86_401 })).status).toBe(400);
      expect((await mint(ACCOUNT, { timeZone: 'Mars/Olympus' })).status).toBe(400);
      expect(await mint('acct-never-seen', {})).toEqual({ status: 404, body: expect.objectContaining({ code: 'ACCOUNT_NOT_FOUND' }) });
    });

    it('refuses links validator takes but a browser cannot open (WHATWG URL refuses them) with 400 naming the field, not a 500', async () => {
      for (const link of ['http://\u2488.com', 'http://\u200b', 'https://exa mple.com']) {
        for (const field of ['checkoutUrl', 'upgradeUrl']) {
          const refused = await mint(ACCOUNT, { [field]: link });
          expect({ link, field, status: refused.status, body: refused.body }).toMatchObject({
            link,
            field,
            status: 400,
            body: { code: 'VALIDATION_FAILED', details: [{ field, reason: expect.stringContaining('absolute http(s) URL') }] },
          });
        }
      }
    });

    it('answers 503 PORTAL_DISABLED on a ledger without PORTAL_TOKEN_SECRET, which also refuses portal tokens', async () => {
      expect(await post(`/v1/accounts/${ACCOUNT}/portal-tokens`, KEYS.minter, {}, disabled.base)).toEqual({ status: 503, body: expect.objectContaining({ code: 'PORTAL_DISABLED' }) });
      const token = await signed({});
      expect(await answer(await call(disabled.base, '/v1/portal/session', token))).toEqual({ status: 401, body: expect.objectContaining({ code: 'UNAUTHENTICATED' }) });
    });
  });

  describe('what a token reads', () => {
    let token: string;
    beforeAll(async () => {
      token = (await mint(ACCOUNT, { ttlSeconds: 900 })).body.token;
    });

    it('reads its own balance, transactions, usage and the CSV export', async () => {
      expect(await get(`/v1/accounts/${ACCOUNT}/balance`, token)).toEqual({ status: 200, body: expect.objectContaining({ accountId: ACCOUNT, available: '7' }) });
      const history = await get(`/v1/accounts/${ACCOUNT}/transactions`, token);
      expect(history.status).toBe(200);
      expect(history.body.items.length).toBe(2);
      expect(await get(`/v1/accounts/${ACCOUNT}/usage?period=7d`, token)).toEqual({ status: 200, body: expect.objectContaining({ totals: expect.objectContaining({ credits: '3', requests: 1 }) }) });
      const csv = await call(ledger.base, `/v1/accounts/${ACCOUNT}/usage/export`, token);
      expect(csv.status).toBe(200);
      expect((await csv.text()).split('\n').filter(Boolean)).toEqual([expect.stringMatching(/^occurred_at,usage_id/), expect.stringContaining('portal-u1')]);
    });

    it('follows its own live balance stream, a grant showing up while it listens', async () => {
      const stream = await streamFrames(ledger.base, `/v1/accounts/${ACCOUNT}/balance/stream`, token);
      try {
        await waitFor(() => stream.frames.some((frame) => frame.available === '7'), 10_000);
        expect((await post(`/v1/accounts/${ACCOUNT}/grants`, KEYS.ops, { reason: 'test grant', idempotencyKey: 'while-streaming', amount: '1' })).status).toBe(201);
        await waitFor(() => stream.frames.some((frame) => frame.available === '8'), 20_000);
      } finally {
        stream.close();
      }
    });

    it('refuses a link that percent-encoding lengthens past 2048 characters, naming it, rather than mint a token every read refuses', async () => {
      const link = `https://shop.example/buy/${'{'.repeat(1500)}`; // 1,525 characters as sent, 4,525 once normalised
      const refused = await mint(ACCOUNT, { checkoutUrl: link });
      expect({ status: refused.status, body: refused.body }).toMatchObject({
        status: 400,
        body: { code: 'VALIDATION_FAILED', details: [{ field: 'checkoutUrl', reason: expect.stringContaining('2048') }] },
      });
      // One just within the bound once normalised mints a token that reads.
      const within = await mint(ACCOUNT, { checkoutUrl: `https://shop.example/buy/${'{'.repeat(674)}` });
      expect(within.status).toBe(201);
      expect((await get(`/v1/accounts/${ACCOUNT}/balance`, within.body.token)).status).toBe(200);
    });

    it('keeps links spelled with an upper-case scheme usable: minted normalised, and the token reads', async () => {
      const minted = await mint(ACCOUNT, { checkoutUrl: 'HTTPS://Chat.Example/checkout' });
      expect(minted.status).toBe(201);
      expect(minted.body.links).toEqual({ checkoutUrl: 'https://chat.example/checkout' });
      expect((await get(`/v1/accounts/${ACCOUNT}/balance`, minted.body.token)).status).toBe(200);
    });

    it('refuses ?at= (a fold of the whole event stream, for operators) to a portal token; an API key still gets it', async () => {
      const at = new Date().toISOString();
      expect(await get(`/v1/accounts/${ACCOUNT}/balance?at=${at}`, token)).toEqual({ status: 403, body: expect.objectContaining({ code: 'FORBIDDEN', details: { reason: 'PORTAL_TOKEN_NOT_ALLOWED' } }) });
      expect((await get(`/v1/accounts/${ACCOUNT}/balance?at=${at}`, KEYS.ops)).status).toBe(200);
    });

    // An end user's browser asking for every year there is, again and again, made the database aggregate the account's
    // whole history at each request: a portal token reads at most PORTAL_MAX_RANGE_DAYS (400) days a request.
    it('reads usage over at most 400 days a request; an API key reads any range', async () => {
      const status = async (path: string, bearer: string) => {
        const response = await call(ledger.base, path, bearer);
        await response.arrayBuffer();
        return response.status;
      };
      for (const path of ['usage', 'usage/export']) {
        const long = await get(`/v1/accounts/${ACCOUNT}/${path}?from=0001-01-01&to=9999-12-31`, token);
        expect(long).toEqual({ status: 400, body: expect.objectContaining({ code: 'VALIDATION_FAILED', details: [{ field: 'from', reason: expect.stringContaining('400 days') }] }) });
        expect(await status(`/v1/accounts/${ACCOUNT}/${path}?from=2025-01-01&to=2026-02-05`, token)).toBe(200); // 400 days
        expect(await status(`/v1/accounts/${ACCOUNT}/${path}?from=0001-01-01&to=9999-12-31`, KEYS.ops)).toBe(200);
      }
    });

    it('ends its live stream when the token expires', async () => {
      const shortLived = await signed({ issuedAt: new Date(), expiresAt: new Date(Date.now() + 3_000) });
      const stream = await streamFrames(ledger.base, `/v1/accounts/${ACCOUNT}/balance/stream`, shortLived);
      try {
        await waitFor(() => stream.frames.length > 0, 10_000);
        await waitFor(() => stream.ended(), 15_000, 100);
      } finally {
        stream.close();
      }
    });

    it('holds at most 5 live streams open per account for portal tokens: the 6th gets 429 until one closes', async () => {
      const open = [];
      try {
        for (let n = 0; n < 5; n++) open.push(await streamFrames(ledger.base, `/v1/accounts/${ACCOUNT}/balance/stream`, token));
        const sixth = await call(ledger.base, `/v1/accounts/${ACCOUNT}/balance/stream`, token);
        expect(sixth.status).toBe(429);
        expect(await sixth.json()).toEqual(expect.objectContaining({ code: 'TOO_MANY_STREAMS' }));
        expect(Number(sixth.headers.get('retry-after'))).toBeGreaterThan(0);
        // An API key is not counted against the portal's streams.
        const operator = await streamFrames(ledger.base, `/v1/accounts/${ACCOUNT}/balance/stream`, KEYS.ops);
        operator.close();
        open.shift()?.close();
        await waitFor(async () => {
          const again = await call(ledger.base, `/v1/accounts/${ACCOUNT}/balance/stream`, token);
          if (again.status === 200) await again.body?.cancel();
          return again.status === 200;
        }, 10_000, 100);
      } finally {
        for (const stream of open) stream.close();
      }
    });

    it('lets a client that lost its streams (a network change: the old connections never closed) open them again under their keys', async () => {
      const path = (key: string) => `/v1/accounts/${ACCOUNT}/balance/stream?streamKey=${key}`;
      const open: Awaited<ReturnType<typeof streamFrames>>[] = [];
      try {
        // Five streams, each under its client's key: from the ledger's side, alive or dead without a close look the same.
        for (let n = 0; n < 5; n++) open.push(await streamFrames(ledger.base, path(`page-${n}-0123456789abcdef`), token));
        // The first client opens its stream again under its key: it takes the old one's place.
        const again = await streamFrames(ledger.base, path('page-0-0123456789abcdef'), token);
        open.push(again);
        await waitFor(() => open[0].ended(), 10_000, 50);
        await waitFor(() => again.frames.length > 0, 10_000, 50);
        expect(open.slice(1, 5).every((stream) => !stream.ended())).toBe(true);
        // A new key still counts against the five.
        expect((await call(ledger.base, path('page-9-0123456789abcdef'), token)).status).toBe(429);
        // A key is the client's, not an instruction: one that is not a plain token is refused and ends nothing.
        const bad = await call(ledger.base, path('x'), token);
        expect(bad.status).toBe(400);
        expect(await bad.json()).toEqual(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
        expect(open.slice(1).every((stream) => !stream.ended())).toBe(true);
      } finally {
        for (const stream of open) stream.close();
      }
    });

    it('shows the history without who did it (actor: null): API key names are the operator\'s, not the end user\'s', async () => {
      const asToken = await get(`/v1/accounts/${ACCOUNT}/transactions`, token);
      expect(asToken.body.items.length).toBeGreaterThan(0);
      expect(asToken.body.items.every((item: { actor: unknown }) => item.actor === null)).toBe(true);
      const asKey = await get(`/v1/accounts/${ACCOUNT}/transactions`, KEYS.ops);
      expect(asKey.body.items.some((item: { actor: unknown }) => item.actor === 'ops')).toBe(true);
    });

    it('refuses another account with 403, on every read route and the session', async () => {
      for (const path of ['balance', 'balance/stream', 'transactions', 'usage', 'usage/export']) {
        expect(await get(`/v1/accounts/${OTHER}/${path}`, token)).toEqual({ status: 403, body: expect.objectContaining({ code: 'FORBIDDEN', details: { reason: 'OTHER_ACCOUNT' } }) });
      }
      expect((await get(`/v1/portal/session?accountId=${OTHER}`, token)).status).toBe(403);
      expect((await get(`/v1/portal/session?accountId=${ACCOUNT}`, token)).status).toBe(200);
    });

    it('can never spend, credit, release or mint: 403 on every write route, even of its own account', async () => {
      const writes: [string, string, object?][] = [
        ['POST', `/v1/accounts/${ACCOUNT}/grants`, { reason: 'test grant', idempotencyKey: 'portal-grant', amount: '1' }],
        ['POST', `/v1/accounts/${ACCOUNT}/purchases`, { paymentReference: 'portal-pay', amount: '1' }],
        ['POST', `/v1/accounts/${ACCOUNT}/authorizations`, { amount: '1', hold: { holdId: 'portal-hold', ttlSeconds: 60 } }],
        ['DELETE', `/v1/accounts/${ACCOUNT}/holds/any-hold`],
        ['POST', `/v1/accounts/${ACCOUNT}/portal-tokens`, {}],
      ];
      for (const [method, path, body] of writes) {
        const refused = await answer(await call(ledger.base, path, token, { method, ...(body && { body: JSON.stringify(body) }) }));
        expect({ path, ...refused }).toEqual({ path, status: 403, body: expect.objectContaining({ code: 'FORBIDDEN', details: { reason: 'PORTAL_TOKEN_NOT_ALLOWED' } }) });
      }
      expect((await get(`/v1/accounts/${ACCOUNT}/balance`, KEYS.ops)).body.available).toBe('8');
    });

    it('an API key reads the session of ?accountId (no expiry, read only), and must name it', async () => {
      expect(await get(`/v1/portal/session?accountId=${ACCOUNT}`, KEYS.reader)).toEqual({ status: 200, body: { accountId: ACCOUNT, expiresAt: null, rights: ['read'], links: {} } });
      expect(await get('/v1/portal/session', KEYS.reader)).toEqual({ status: 400, body: expect.objectContaining({ code: 'VALIDATION_FAILED' }) });
      expect((await get(`/v1/portal/session?accountId=${ACCOUNT}`, KEYS.reporter)).status).toBe(403);
    });
  });

  describe('refused tokens', () => {
    it('an expired token: 401 UNAUTHENTICATED saying it expired', async () => {
      const expired = await signed({ issuedAt: new Date(Date.now() - 3_700_000), expiresAt: new Date(Date.now() - 100_000) });
      const refused = await get(`/v1/accounts/${ACCOUNT}/balance`, expired);
      expect(refused).toEqual({ status: 401, body: { code: 'UNAUTHENTICATED', message: expect.stringContaining('expired'), details: { reason: 'TOKEN_EXPIRED' } } });
      // An expired token is refused before the route is looked at: 401, not 403, on a write route too.
      expect((await post(`/v1/accounts/${ACCOUNT}/grants`, expired, { reason: 'test grant', idempotencyKey: 'x', amount: '1' })).status).toBe(401);
    });

    it('a tampered token (another account in the payload, a changed signature), another secret or another audience: 401', async () => {
      const token = (await mint(ACCOUNT, {})).body.token as string;
      const [header, payload, signature] = token.split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
      const otherAccount = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: OTHER })).toString('base64url')}.${signature}`;
      const otherSignature = `${header}.${payload}.${signature.slice(0, -4)}${signature.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
      const wrongAudience = await signJwt({ ...claims, aud: 'someone-else' });
      const otherSecret = await signed({}, 'not-the-ledger-secret-but-32-characters-long');
      for (const bad of [otherAccount, otherSignature, wrongAudience, otherSecret, 'a.b.c']) {
        const path = bad === otherAccount ? `/v1/accounts/${OTHER}/balance` : `/v1/accounts/${ACCOUNT}/balance`;
        const refused = await get(path, bad);
        expect(refused).toEqual({ status: 401, body: { code: 'UNAUTHENTICATED', message: expect.any(String), details: { reason: 'TOKEN_INVALID' } } });
        expect(JSON.stringify(refused.body)).not.toContain(bad);
      }
    });

    it('a token whose minting key was removed, rotated or narrowed away from the account since: 401 TOKEN_REVOKED; a kept key\'s token still reads', async () => {
      const balance = `/v1/accounts/${ACCOUNT}/balance`;
      const tokens = {
        removed: (await mint(ACCOUNT, {}, KEYS.minter)).body.token as string,
        narrowed: (await mint(ACCOUNT, {}, KEYS.scopedMinter)).body.token as string,
        rotated: (await mint(ACCOUNT, {}, KEYS.rotatingMinter)).body.token as string,
        stillCovered: (await mint(OTHER, {}, KEYS.scopedMinter)).body.token as string,
      };
      for (const token of Object.values(tokens)) expect((await answer(await call(ledger.base, `/v1/portal/session`, token))).status).toBe(200);
      // The same ledger restarted with the changed API_KEYS (same database, same PORTAL_TOKEN_SECRET).
      const onChanged = async (path: string, token: string) => answer(await call(keysChanged.base, path, token));
      for (const token of [tokens.removed, tokens.narrowed, tokens.rotated]) {
        expect(await onChanged(balance, token)).toEqual({ status: 401, body: { code: 'UNAUTHENTICATED', message: expect.stringContaining('minted'), details: { reason: 'TOKEN_REVOKED' } } });
        expect((await onChanged('/v1/portal/session', token)).status).toBe(401);
      }
      // Refused before the route is looked at, as an expired token is: 401 on a write route too, not 403.
      const write = await call(keysChanged.base, `/v1/accounts/${ACCOUNT}/grants`, tokens.removed, { method: 'POST', body: JSON.stringify({ reason: 'x', idempotencyKey: 'x', amount: '1' }) });
      expect(await answer(write)).toMatchObject({ status: 401, body: { details: { reason: 'TOKEN_REVOKED' } } });
      expect(await onChanged(`/v1/accounts/${OTHER}/balance`, tokens.stillCovered)).toEqual({ status: 200, body: expect.objectContaining({ accountId: OTHER }) });
      // The new key mints tokens that read; a token minted before minting keys were signed in (no claim) reads until it expires.
      const fresh = (await post(`/v1/accounts/${ACCOUNT}/portal-tokens`, KEYS.rotatedMinter, {}, keysChanged.base)).body.token as string;
      expect((await onChanged(balance, fresh)).status).toBe(200);
      expect((await onChanged(balance, await signed({}))).status).toBe(200);
    });

    it('never writes a token to the logs', async () => {
      const token = (await mint(ACCOUNT, {})).body.token as string;
      await get(`/v1/accounts/${ACCOUNT}/balance`, token);
      await get(`/v1/accounts/${OTHER}/balance`, token);
      const [, , signature] = token.split('.');
      expect(ledger.output()).not.toContain(signature);
    });
  });

  describe('CORS', () => {
    const preflight = (origin: string) =>
      fetch(`${ledger.base}/v1/accounts/${ACCOUNT}/balance`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });

    it('lets a preflight from an allowed origin through: GET with Authorization', async () => {
      const response = await preflight(ALLOWED_ORIGIN);
      expect(response.status).toBe(204);
      expect(response.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
      expect(response.headers.get('access-control-allow-methods')).toBe('GET');
      expect(response.headers.get('access-control-allow-headers')?.toLowerCase()).toBe('authorization');
    });

    it('gives a disallowed origin no Access-Control-Allow-Origin, on the preflight or the request', async () => {
      expect((await preflight('https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
      const token = (await mint(ACCOUNT, {})).body.token as string;
      const response = await call(ledger.base, `/v1/accounts/${ACCOUNT}/balance`, token, { headers: { origin: 'https://evil.example' } });
      expect(response.status).toBe(200);
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
    });

    it('answers the allowed origin on JSON, the SSE stream and the CSV export, exposing Content-Disposition', async () => {
      const token = (await mint(ACCOUNT, {})).body.token as string;
      const origin = { origin: ALLOWED_ORIGIN };
      const json = await call(ledger.base, `/v1/accounts/${ACCOUNT}/balance`, token, { headers: origin });
      expect(json.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);

      const csv = await call(ledger.base, `/v1/accounts/${ACCOUNT}/usage/export`, token, { headers: origin });
      expect(csv.status).toBe(200);
      expect(csv.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
      expect(csv.headers.get('access-control-expose-headers')).toContain('Content-Disposition');
      expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename="usage-acct-portal-/);
      expect(csv.headers.get('x-request-id')).toBeTruthy();
      await csv.text();

      const controller = new AbortController();
      const sse = await call(ledger.base, `/v1/accounts/${ACCOUNT}/balance/stream`, token, { headers: origin, signal: controller.signal });
      try {
        expect(sse.status).toBe(200);
        expect(sse.headers.get('content-type')).toMatch(/^text\/event-stream/);
        expect(sse.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
        expect(sse.headers.get('x-request-id')).toBeTruthy();
      } finally {
        controller.abort();
      }
    });
  });
});

/** A JWT signed with the ledger's test secret over any claims (HS256), for claims the codec itself would not write. */
async function signJwt(claims: object): Promise<string> {
  const { createHmac } = await import('node:crypto');
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(claims)}`;
  return `${unsigned}.${createHmac('sha256', TEST_PORTAL_TOKEN_SECRET).update(unsigned).digest('base64url')}`;
}

/** Reads server-sent `balance` frames in the background until closed. */
async function streamFrames(base: string, path: string, bearer: string): Promise<{ frames: Record<string, any>[]; ended: () => boolean; close: () => void }> {
  const controller = new AbortController();
  const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${bearer}` }, signal: controller.signal });
  if (response.status !== 200 || !response.body) throw new Error(`the stream answered ${response.status}`);
  const frames: Record<string, any>[] = [];
  const state = { ended: false };
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  void (async () => {
    for (;;) {
      const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }));
      if (chunk.done) {
        state.ended = true;
        return;
      }
      buffered += decoder.decode(chunk.value, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = block.split('\n').find((line) => line.startsWith('data: '));
        if (block.includes('event: balance') && data) frames.push(JSON.parse(data.slice(6)));
      }
    }
  })();
  return { frames, ended: () => state.ended, close: () => controller.abort() };
}

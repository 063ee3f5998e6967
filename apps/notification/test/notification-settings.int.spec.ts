import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';
import { DEVELOPMENT_WEBHOOK_SECRET_KEY } from '../src/config/notification.config';
import { WebhookSecretBox, parseWebhookSecretKeys } from '../src/settings/webhook-secret.codec';
import { createTestSchema, testDatabaseUrl, uniqueSuffix } from '@tally/testing';
import { READER_KEY, WRITER_KEY, bootApp, call, ledgerTopic, newWebhookSecret, type RunningApp } from './notification.harness';

describe('notification settings API (int)', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let ledger: Awaited<ReturnType<typeof ledgerTopic>>;
  let running: RunningApp;
  let pool: Pool;
  const path = (accountId: string) => `/v1/accounts/${accountId}/notification-settings`;
  const stored = async (accountId: string) =>
    (await pool.query(`SELECT * FROM "${schema.schema}".notification_settings WHERE account_id = $1`, [accountId])).rows;

  beforeAll(async () => {
    schema = await createTestSchema('notification_settings');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });
    ledger = await ledgerTopic();
    running = await bootApp({ DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: ledger.group });
  });

  afterAll(async () => {
    await running?.app.close();
    await ledger?.close();
    await pool?.end();
    await schema?.drop();
  });

  it('stores settings and never returns the secret', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    const secret = newWebhookSecret();
    const put = await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, {
      email: 'ops@example.com', webhookUrl: 'https://hooks.example.com/tally', webhookSecret: secret, notificationTypes: { credits_renewed: true },
    });
    expect(put.status).toBe(200);
    expect(put.text).not.toContain(secret);
    const get = await call(running.baseUrl, 'GET', path(accountId), READER_KEY);
    expect(get.status).toBe(200);
    expect(get.text).not.toContain(secret.slice(6));
    expect(get.body).toEqual({
      accountId, email: 'ops@example.com', webhookUrl: 'https://hooks.example.com/…', webhookSecretSet: true,
      notificationTypes: { low_credit: true, credits_depleted: true, credits_renewed: true, purchase_receipt: false },
      updatedAt: expect.any(String),
    });
    expect(get.body).not.toHaveProperty('webhookSecret');
    // The URL whole only to a key that may set it: a webhook URL may itself be a capability (whoever knows it can post).
    const whole = await call(running.baseUrl, 'GET', path(accountId), WRITER_KEY);
    expect(whole.body).toMatchObject({ webhookUrl: 'https://hooks.example.com/tally' });

    // A later PUT without the secret keeps it; removing the URL removes it.
    expect((await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { email: 'new@example.com', webhookUrl: 'https://hooks.example.com/tally' })).status).toBe(200);
    // At rest the secret is sealed (AES-256-GCM, the development key here: the harness sets no WEBHOOK_SECRET_KEYS).
    const [row] = await stored(accountId);
    expect(row).toMatchObject({ email: 'new@example.com', webhook_secret: expect.stringMatching(/^enc:v1:development:/) });
    expect(row.webhook_secret).not.toContain(secret.slice(6, 30));
    expect(new WebhookSecretBox([DEVELOPMENT_WEBHOOK_SECRET_KEY]).open(row.webhook_secret, accountId)).toBe(secret);
    const cleared = await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { email: 'new@example.com' });
    expect(cleared.body).toMatchObject({ webhookUrl: null, webhookSecretSet: false });
    expect((await stored(accountId))[0].webhook_secret).toBeNull();
  });

  // The stored secret is the first receiver's: a URL moved to another party kept signing with it, so the new party
  // got signatures it could not check and could replay them to the first receiver within its timestamp tolerance.
  // Another path of the same origin is another party too where receivers share a host (hooks.zapier.com, hooks.slack.com,
  // an API gateway): only the same URL keeps the stored secret.
  it('asks for a new secret when the webhook URL changes at all (another origin, port or path); the same URL keeps the stored one', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    const secret = newWebhookSecret();
    expect((await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { webhookUrl: 'https://hooks.example.com/tally', webhookSecret: secret })).status).toBe(200);
    const moved = await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { webhookUrl: 'https://hooks.other.example.org/tally' });
    expect(moved).toMatchObject({ status: 400, body: { code: 'VALIDATION_FAILED', details: [{ field: 'webhookSecret', reason: expect.stringContaining('webhook URL changes') }] } });
    expect((await stored(accountId))[0].webhook_url).toBe('https://hooks.example.com/tally');
    expect((await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { webhookUrl: 'https://hooks.example.com:8443/tally' })).status).toBe(400); // another port
    const path2 = await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { webhookUrl: 'https://hooks.example.com/hooks/catch/999/mine' });
    expect(path2).toMatchObject({ status: 400, body: { details: [{ field: 'webhookSecret', reason: expect.stringContaining('webhook URL changes') }] } });
    expect((await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { webhookUrl: 'https://hooks.example.com/tally?x=1' })).status).toBe(400); // another query
    // The same URL however spelled (the host's case, the default port) keeps it: a PUT of the other fields.
    expect((await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { webhookUrl: 'https://HOOKS.example.com:443/tally', email: 'a@example.com' })).body).toMatchObject({ webhookSecretSet: true });
    expect((await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { webhookUrl: 'https://hooks.other.example.org/tally', webhookSecret: newWebhookSecret() })).status).toBe(200);
    // No secret left behind: the reseal tests below count every secret of the schema.
    expect((await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { email: 'ops@example.com' })).body).toMatchObject({ webhookSecretSet: false });
  });

  it('boots past a secret that cannot be opened (copied from another account), leaving it as stored for its deliveries to fail', async () => {
    const [victim, copied] = [`acc-victim-${uniqueSuffix()}`, `acc-copied-${uniqueSuffix()}`];
    const development = `development:${DEVELOPMENT_WEBHOOK_SECRET_KEY.key.toString('base64')}`;
    const sealedForVictim = new WebhookSecretBox([DEVELOPMENT_WEBHOOK_SECRET_KEY]).seal(newWebhookSecret(), victim);
    await pool.query(`INSERT INTO "${schema.schema}".notification_settings (account_id, webhook_url, webhook_secret) VALUES ($1, 'https://hooks.example.com/x', $2)`, [copied, sealedForVictim]);
    const current = `k2028:${randomBytes(32).toString('base64')}`;
    const booted = await bootApp({ DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: `${ledger.group}-copied`, WEBHOOK_SECRET_KEYS: `${current},${development}` });
    await booted.app.close();
    expect((await stored(copied))[0].webhook_secret).toBe(sealedForVictim);
  });

  it('reseals at boot: plain-text secrets and those of an older key move to the current key; a key still in use cannot be removed', async () => {
    const [plainAccount, oldAccount] = [`acc-plain-${uniqueSuffix()}`, `acc-old-${uniqueSuffix()}`];
    const [plainSecret, oldSecret] = [newWebhookSecret(), newWebhookSecret()];
    const insert = (accountId: string, secret: string) =>
      pool.query(`INSERT INTO "${schema.schema}".notification_settings (account_id, webhook_url, webhook_secret) VALUES ($1, 'https://hooks.example.com/x', $2)`, [accountId, secret]);
    await insert(plainAccount, plainSecret); // as stored before encryption existed
    await insert(oldAccount, new WebhookSecretBox([DEVELOPMENT_WEBHOOK_SECRET_KEY]).seal(oldSecret, oldAccount));

    const current = `k2026:${randomBytes(32).toString('base64')}`;
    const env = { DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: `${ledger.group}-reseal` };
    const rotated = await bootApp({ ...env, WEBHOOK_SECRET_KEYS: `${current},development:${DEVELOPMENT_WEBHOOK_SECRET_KEY.key.toString('base64')}` });
    await rotated.app.close();
    const box = new WebhookSecretBox(parseWebhookSecretKeys(current));
    for (const [accountId, secret] of [[plainAccount, plainSecret], [oldAccount, oldSecret]]) {
      const sealed = (await stored(accountId))[0].webhook_secret as string;
      expect(sealed).toMatch(/^enc:v1:k2026:/);
      expect(box.open(sealed, accountId)).toBe(secret);
    }

    // Dropping a key still in use (k2026 now seals both) stops the boot, naming it and how many secrets need it.
    await expect(bootApp({ ...env, WEBHOOK_SECRET_KEYS: `k2027:${randomBytes(32).toString('base64')}` })).rejects.toThrow(/no longer lists: .*k2026 \(2 secrets\)/);
  });

  it.each([
    ['a malformed email', { email: 'not-an-email' }, 'email'],
    ['a plain http URL to a host not on the allowlist', { webhookUrl: 'http://hooks.example.com/x', webhookSecret: newWebhookSecret() }, 'webhookUrl'],
    ['a private address', { webhookUrl: 'https://10.1.2.3/x', webhookSecret: newWebhookSecret() }, 'webhookUrl'],
    ['a link-local address (cloud metadata)', { webhookUrl: 'https://169.254.169.254/latest', webhookSecret: newWebhookSecret() }, 'webhookUrl'],
    ['localhost', { webhookUrl: 'https://localhost/x', webhookSecret: newWebhookSecret() }, 'webhookUrl'],
    ['a non-http scheme', { webhookUrl: 'ftp://hooks.example.com/x', webhookSecret: newWebhookSecret() }, 'webhookUrl'],
    ['a secret that is too short', { webhookUrl: 'https://hooks.example.com/x', webhookSecret: `whsec_${Buffer.alloc(16, 1).toString('base64')}` }, 'webhookSecret'],
    ['a secret without the whsec_ prefix', { webhookUrl: 'https://hooks.example.com/x', webhookSecret: Buffer.alloc(32, 1).toString('base64') }, 'webhookSecret'],
    ['a webhook URL without any secret', { webhookUrl: 'https://hooks.example.com/x' }, 'webhookSecret'],
    ['an unknown notification type', { email: 'ops@example.com', notificationTypes: { spam: true } }, 'notificationTypes.spam'],
    ['a non-boolean preference', { email: 'ops@example.com', notificationTypes: { low_credit: 'no' } }, 'notificationTypes.low_credit'],
    ['an unknown field', { email: 'ops@example.com', sms: '+1555' }, 'sms'],
  ])('refuses %s with a 400 naming the field, and stores nothing', async (_name, body, field) => {
    const accountId = `acc-${uniqueSuffix()}`;
    const response = await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, body);
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.any(String) });
    expect(response.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field, reason: expect.any(String) })]));
    expect(await stored(accountId)).toEqual([]);
    expect((await call(running.baseUrl, 'GET', path(accountId), READER_KEY)).status).toBe(404);
  });

  it('takes concurrent first PUTs of an account\'s settings: each one 200, one row, holding one of them', async () => {
    for (let round = 0; round < 10; round += 1) {
      const accountId = `acc-${uniqueSuffix()}`;
      const emails = Array.from({ length: 10 }, (_, i) => `ops${i}@example.com`);
      const answers = await Promise.all(emails.map((email) => call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { email })));
      expect(answers.map((answer) => answer.status)).toEqual(emails.map(() => 200));
      const rows = await stored(accountId);
      expect(rows).toHaveLength(1);
      expect(emails).toContain(rows[0].email);
    }
  });

  it('refuses an email address the mailer would send somewhere else (quoted or non-ASCII local part) with 400 naming the field, storing nothing', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    for (const email of ['"a>b"@example.com', '"a,b"@example.com', '""@example.com', 'ä@example.com']) {
      const refused = await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { email });
      expect({ email, status: refused.status, body: refused.body }).toMatchObject({ email, status: 400, body: { details: [{ field: 'email' }] } });
    }
    expect(await stored(accountId)).toEqual([]);
    expect((await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { email: "o'neil+alerts@exämple.com" })).status).toBe(200);
  });

  it('refuses a webhook URL to localhost spelled with a trailing dot, as without it', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    for (const webhookUrl of ['https://localhost./hook', 'https://api.localhost./hook']) {
      const refused = await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { webhookUrl, webhookSecret: newWebhookSecret() });
      expect({ webhookUrl, status: refused.status, body: refused.body }).toMatchObject({ webhookUrl, status: 400, body: { details: [{ field: 'webhookUrl', reason: expect.stringMatching(/localhost/) }] } });
    }
    expect(await stored(accountId)).toEqual([]);
  });

  it('shows a read-only key the webhook URL\'s origin only, whatever its path, query or port', async () => {
    for (const [url, shown] of [
      ['https://hooks.example.com/services/T0/B0/secret-token', 'https://hooks.example.com/…'],
      ['https://hooks.example.com:8443/?token=secret-token', 'https://hooks.example.com:8443/…'],
      ['https://hooks.example.com/', 'https://hooks.example.com/'],
    ]) {
      const accountId = `acc-${uniqueSuffix()}`;
      expect((await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { webhookUrl: url, webhookSecret: newWebhookSecret() })).status).toBe(200);
      const read = await call(running.baseUrl, 'GET', path(accountId), READER_KEY);
      expect({ url, shown: read.body.webhookUrl, leaks: read.text.includes('secret-token') }).toEqual({ url, shown, leaks: false });
    }
  });

  it('plain http is accepted for an allowlisted host', async () => {
    const response = await call(running.baseUrl, 'PUT', path(`acc-${uniqueSuffix()}`), WRITER_KEY, { webhookUrl: 'http://127.0.0.1:9/x', webhookSecret: newWebhookSecret() });
    expect(response.status).toBe(200);
  });

  it('enforces scopes: GET needs accounts:read, PUT notifications:write', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    expect((await call(running.baseUrl, 'PUT', path(accountId), undefined, { email: 'a@example.com' })).status).toBe(401);
    const forbidden = await call(running.baseUrl, 'PUT', path(accountId), READER_KEY, { email: 'a@example.com' });
    expect(forbidden).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    expect(await stored(accountId)).toEqual([]);
    expect((await call(running.baseUrl, 'GET', path(accountId), undefined)).status).toBe(401);
    expect((await call(running.baseUrl, 'GET', `/v1/accounts/${accountId}/notifications`, undefined)).status).toBe(401);
    const unknown = await call(running.baseUrl, 'GET', path(accountId), READER_KEY);
    expect(unknown).toMatchObject({ status: 404, body: { code: 'NOTIFICATION_SETTINGS_NOT_FOUND' } });
  });

  it('serves health without a key', async () => {
    const health = await call(running.baseUrl, 'GET', '/health', undefined);
    expect(health.status).toBe(200);
    expect(health.body.details).toMatchObject({ postgres: { status: 'up' }, kafka: { status: 'up' } });
  });
});

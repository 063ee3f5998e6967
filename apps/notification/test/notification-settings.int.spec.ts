import { Pool } from 'pg';
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
      accountId, email: 'ops@example.com', webhookUrl: 'https://hooks.example.com/tally', webhookSecretSet: true,
      notificationTypes: { low_credit: true, credits_depleted: true, credits_renewed: true, purchase_receipt: false },
      updatedAt: expect.any(String),
    });
    expect(get.body).not.toHaveProperty('webhookSecret');

    // A later PUT without the secret keeps it; removing the URL removes it.
    expect((await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { email: 'new@example.com', webhookUrl: 'https://hooks.example.com/v2' })).status).toBe(200);
    expect((await stored(accountId))[0]).toMatchObject({ email: 'new@example.com', webhook_secret: secret });
    const cleared = await call(running.baseUrl, 'PUT', path(accountId), WRITER_KEY, { email: 'new@example.com' });
    expect(cleared.body).toMatchObject({ webhookUrl: null, webhookSecretSet: false });
    expect((await stored(accountId))[0].webhook_secret).toBeNull();
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

  it('plain http is accepted for an allowlisted host', async () => {
    const response = await call(running.baseUrl, 'PUT', path(`acc-${uniqueSuffix()}`), WRITER_KEY, { webhookUrl: 'http://127.0.0.1:9/x', webhookSecret: newWebhookSecret() });
    expect(response.status).toBe(200);
  });

  it('enforces scopes: GET needs accounts:read, PUT accounts:write', async () => {
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

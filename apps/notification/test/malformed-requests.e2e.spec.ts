import { Pool } from 'pg';
import {
  ECHO_MARKER, createTestSchema, headerCases, mutatedBodyCases, problemWith, rawBodyCases, sendAll, testDatabaseUrl, urlCases,
  type MalformedRequest,
} from '@tally/testing';
import { WRITER_KEY, bootApp, ledgerTopic, newWebhookSecret, type RunningApp } from './notification.harness';

const SEED = 20261130;
const ACCOUNT = 'acct-fuzz';

/** Malformed requests against the real notification service: never a 5xx, always `{code, message}`, nothing stored. */
describe('the notification service refuses malformed requests cleanly', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let ledger: Awaited<ReturnType<typeof ledgerTopic>>;
  let running: RunningApp;
  let pool: Pool;
  const settingsPath = `/v1/accounts/${ACCOUNT}/notification-settings`;
  const put = (label: string, body: unknown): MalformedRequest => ({
    label, method: 'PUT', path: settingsPath, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), mustRefuse: true,
  });
  const stored = async () => (await pool.query(`SELECT count(*)::int AS n FROM "${schema.schema}".notification_settings`)).rows[0].n as number;

  beforeAll(async () => {
    schema = await createTestSchema('notification_fuzz');
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

  it('answers every malformed request with a 4xx {code, message}, echoes nothing, stores nothing and stays healthy', async () => {
    const valid = { email: 'ops@example.com', webhookUrl: 'https://hooks.example.com/tally', webhookSecret: newWebhookSecret(), notificationTypes: { low_credit: true } };
    const requests: MalformedRequest[] = [
      put('a null body', null),
      { label: 'no body at all', method: 'PUT', path: settingsPath, mustRefuse: true },
      put('a NUL byte in the webhook URL', { ...valid, webhookUrl: `https://hooks.example.com/\u0000${ECHO_MARKER}` }),
      put('a NUL byte in the email', { ...valid, email: `ops\u0000${ECHO_MARKER}@example.com` }),
      put('a lone surrogate in the webhook URL', { ...valid, webhookUrl: `https://hooks.example.com/\udc00${ECHO_MARKER}` }),
      put('webhookSecret null', { ...valid, webhookSecret: null }),
      put('notificationTypes null', { ...valid, notificationTypes: null }),
      put('notificationTypes an array', { ...valid, notificationTypes: ['low_credit'] }),
      ...rawBodyCases('PUT', settingsPath),
      ...headerCases('GET', settingsPath),
      ...urlCases('PUT', '/v1/accounts/{}/notification-settings', true),
      ...urlCases('GET', '/v1/accounts/{}/notification-settings', true),
      ...urlCases('GET', '/v1/accounts/{}/notifications', true),
      ...urlCases('GET', `/v1/accounts/${ACCOUNT}/notifications?limit={}`, true),
      ...mutatedBodyCases(
        { method: 'PUT', path: settingsPath, valid, strictFields: [], optionalFields: ['webhookSecret', 'notificationTypes', 'notificationTypes.low_credit'], nullableFields: ['email', 'webhookUrl'] },
        { seed: SEED, runs: 200 },
      ),
    ];
    const before = await stored();
    const outcomes = await sendAll(running.baseUrl, WRITER_KEY, requests);
    expect(outcomes.map(problemWith).filter(Boolean)).toEqual([]);
    expect(await stored()).toBe(before);
    expect((await fetch(`${running.baseUrl}/health`)).status).toBe(200);
  });
});

import { Pool } from 'pg';
import { OpenApiContract, createTestSchema, fuzzOperations, testDatabaseUrl } from '@tally/testing';
import { READER_KEY, WRITER_KEY, bootApp, call, ledgerTopic, newWebhookSecret, type RunningApp } from './notification.harness';

const ACCOUNT = 'acct-fuzz';

/**
 * The HTTP fuzzer against the real notification service: requests generated from its OpenAPI document, FUZZ_RUNS
 * per operation, seed printed on failure (FC_SEED replays it). No 5xx, every answer as documented, and the stored
 * settings unchanged by a refused request.
 */
describe('the notification service under requests generated from its OpenAPI document', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let ledger: Awaited<ReturnType<typeof ledgerTopic>>;
  let running: RunningApp;
  let pool: Pool;

  beforeAll(async () => {
    schema = await createTestSchema('notification_fuzz');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });
    ledger = await ledgerTopic();
    running = await bootApp({ DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: ledger.group });
    const settings = { email: 'ops@example.com', webhookUrl: 'https://hooks.example.com/tally', webhookSecret: newWebhookSecret() };
    expect((await call(running.baseUrl, 'PUT', `/v1/accounts/${ACCOUNT}/notification-settings`, WRITER_KEY, settings)).status).toBe(200);
  });

  afterAll(async () => {
    await running?.app.close();
    await ledger?.close();
    await pool?.end();
    await schema?.drop();
  });

  it('answers every generated request as its document says, never a 5xx, and stores nothing it refuses', async () => {
    const stored = async () =>
      (await pool.query(`SELECT md5(coalesce(string_agg(s::text, '|' ORDER BY s.account_id), '')) AS digest FROM "${schema.schema}".notification_settings s`)).rows[0].digest as string;
    const contract = await OpenApiContract.served(running.baseUrl);
    const report = await fuzzOperations({ contract, baseUrl: running.baseUrl, apiKey: WRITER_KEY, pathValues: { accountId: ACCOUNT }, bodyLimit: 1024 * 1024, stored });
    if (process.env.FUZZ_REPORT) console.log(JSON.stringify(report));
    expect(report.requests).toBeGreaterThan(0);
    // A key without the write scope is refused with 403 FORBIDDEN, as documented, and changes nothing.
    const before = await stored();
    const forbidden = await call(running.baseUrl, 'PUT', `/v1/accounts/${ACCOUNT}/notification-settings`, READER_KEY, { email: null });
    expect(forbidden.status).toBe(403);
    const put = contract.operations.find((op) => op.operationId === 'putNotificationSettings');
    expect(put).toBeDefined();
    if (put) expect(contract.problemWith(put, { status: 403, headers: new Headers({ 'content-type': 'application/json' }), text: forbidden.text })).toBeUndefined();
    expect(await stored()).toBe(before);
  }, 600_000);
});

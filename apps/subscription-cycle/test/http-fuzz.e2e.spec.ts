import { DataSource } from 'typeorm';
import { ManualClock } from '@tally/shared';
import { OpenApiContract, createTestSchema, fuzzOperations } from '@tally/testing';
import { WRITER_KEY, http, startApp, testTopic, type TestApp } from './subscription-cycle.harness';

const ACCOUNT = 'acct-fuzz';

/**
 * The HTTP fuzzer against the real service: requests generated from its OpenAPI document (valid and mutated),
 * FUZZ_RUNS per operation, seed printed on failure (FC_SEED replays it). No 5xx, every answer as documented,
 * nothing stored for a refused request.
 */
describe('subscription-cycle under requests generated from its OpenAPI document', () => {
  const clock = new ManualClock(new Date('2031-03-10T08:00:00.000Z'));
  let dropSchema: () => Promise<void>;
  let service: TestApp;

  beforeAll(async () => {
    const { schema, drop } = await createTestSchema('sc_fuzz');
    dropSchema = drop;
    service = await startApp({ schema, topic: testTopic(), clock });
    // An existing subscription, so generated requests also reach plan changes and cancellations.
    expect((await http(service.baseUrl, 'PUT', `/v1/accounts/${ACCOUNT}/subscription`, { planId: 'pro', interval: 'monthly', timeZone: 'Europe/Paris' })).status).toBe(200);
  });

  afterAll(async () => {
    await service?.app.close();
    await dropSchema?.();
  });

  it('answers every generated request as its document says, never a 5xx, and stores nothing it refuses', async () => {
    const db = service.app.get(DataSource);
    const schema = service.config.DATABASE_SCHEMA;
    const stored = async () => {
      const [subscriptions] = await db.query(`SELECT md5(coalesce(string_agg(s::text, '|' ORDER BY s.account_id), '')) AS digest FROM "${schema}".subscriptions s`);
      const [outbox] = await db.query(`SELECT count(*)::int AS n FROM "${schema}".outbox_messages`);
      return { subscriptions: subscriptions.digest as string, outbox: outbox.n as number };
    };
    const report = await fuzzOperations({
      contract: await OpenApiContract.served(service.baseUrl),
      baseUrl: service.baseUrl,
      apiKey: WRITER_KEY,
      pathValues: { accountId: ACCOUNT },
      bodyLimit: 1024 * 1024,
      stored,
    });
    expect(report.requests).toBeGreaterThan(0);
    if (process.env.FUZZ_REPORT) console.log(JSON.stringify(report));
    // Still up (liveness: readiness also depends on the broker, which other tests may be restarting).
    expect((await fetch(`${service.baseUrl}/health/live`)).status).toBe(200);
  }, 600_000);
});

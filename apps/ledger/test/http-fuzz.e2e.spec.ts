import type { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { OpenApiContract, fuzzOperations, testDatabaseUrl, waitFor } from '@tally/testing';
import { API_KEY, createTestSchema, createTopics, json, ledgerTestSettings, startLedger } from './ledger.harness';

const ACCOUNT = 'acct-fuzz';

/**
 * The HTTP fuzzer against the real ledger (relay and projection running, so the read side answers; no command
 * consumer or expiry worker, so only HTTP appends events): requests generated from its OpenAPI document, FUZZ_RUNS
 * per operation, seed printed on failure (FC_SEED replays it). No 5xx, every answer as documented, and no event
 * appended for a refused request.
 */
describe('the ledger under requests generated from its OpenAPI document', () => {
  const { env, topics } = ledgerTestSettings();
  let app: INestApplication;
  let base: string;
  let drop: () => Promise<void>;
  let schema: string;
  let db: Client;

  beforeAll(async () => {
    const created = await createTestSchema('ledger_fuzz');
    ({ schema, drop } = created);
    await createTopics(topics);
    ({ app, base } = await startLedger({ ...env, WORKERS: 'relay,projection', LOG_LEVEL: 'silent' }, schema));
    db = new Client({ connectionString: testDatabaseUrl() });
    await db.connect();
    // A funded account with an open hold, so generated requests also reach real balances, holds and history.
    expect((await json(base).post(`/v1/accounts/${ACCOUNT}/grants`, { reason: 'test grant', idempotencyKey: 'fuzz-funds', amount: '100' })).status).toBe(201);
    expect((await json(base).post(`/v1/accounts/${ACCOUNT}/authorizations`, { amount: '1', hold: { holdId: 'fuzz-hold', ttlSeconds: 86_400 } })).status).toBe(200);
    // A grant of its own for generated voids (corrections) to reach.
    expect((await json(base).post(`/v1/accounts/${ACCOUNT}/grants`, { reason: 'test grant', idempotencyKey: 'fuzz-void', amount: '1' })).status).toBe(201);
    await waitFor(async () => (await json(base).get(`/v1/accounts/${ACCOUNT}/balance`)).status === 200, 30_000);
  }, 60_000);

  afterAll(async () => {
    await db?.end();
    await app?.close();
    await drop?.();
  });

  it('answers every generated request as its document says, never a 5xx, and appends nothing it refuses', async () => {
    const stored = async () => (await db.query(`SELECT count(*)::int AS n, max(global_position)::text AS last FROM "${schema}".events`)).rows[0];
    const report = await fuzzOperations({
      contract: await OpenApiContract.served(base),
      baseUrl: base,
      apiKey: API_KEY,
      pathValues: { accountId: ACCOUNT, holdId: 'fuzz-hold', grantId: 'grant:fuzz-void' },
      bodyLimit: 1024 * 1024,
      stored,
    });
    if (process.env.FUZZ_REPORT) console.log(JSON.stringify(report));
    expect(report.requests).toBeGreaterThan(0);
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
  }, 600_000);
});

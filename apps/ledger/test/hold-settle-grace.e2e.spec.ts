import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'pg';
import { testDatabaseUrl, waitFor, type ServiceProcess } from '@tally/testing';
import { json, ledgerTestSettings, reportUsage, startLedgerWithIngest } from './ledger.harness';

/**
 * A usage the product reports just before its hold's TTL ends reaches the ledger a little later (usage-ingest, Kafka,
 * the usage consumer; a consumer's restart or rebalance takes seconds). Found by the money-path review: the expiry
 * worker released the hold about a second after its TTL, so such a usage found no hold and was a plain debit, and on
 * a write-off plan what other usage had meanwhile spent of the released credits was written off. The hold's credits
 * now stay reserved for HOLD_SETTLE_GRACE_SECONDS after the `expiresAt` the authorization answers (5 s here).
 * Real HTTP, usage-ingest, Kafka and PostgreSQL.
 */
describe('a hold settled by usage that reaches the ledger just after its TTL', () => {
  const GRACE_SECONDS = 5;
  const { env, topics } = ledgerTestSettings();
  let api: ReturnType<typeof json>;
  let ingest: ServiceProcess;
  let stop: () => Promise<void>;
  let pool: Pool;
  let schema: string;

  beforeAll(async () => {
    ({ api, ingest, stop, schema } = await startLedgerWithIngest('hold_grace', { ...env, HOLD_SETTLE_GRACE_SECONDS: String(GRACE_SECONDS) }, topics));
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 1 });
  });

  afterAll(async () => {
    await pool?.end();
    await stop?.();
  });

  const holdEvents = async (accountId: string, holdId: string) =>
    (
      await pool.query<{ type: string; data: Record<string, string>; recorded_at: Date }>(
        `SELECT type, data, recorded_at FROM "${schema}".events WHERE stream_id = $1 AND data->>'holdId' = $2 ORDER BY version`,
        [`account-${accountId}`, holdId],
      )
    ).rows;
  const balance = async (accountId: string) => (await api.get(`/v1/accounts/${accountId}/balance`)).body as Record<string, string>;

  it('keeps the credits reserved past the TTL answered, refuses what they would have paid, and settles the hold when the usage comes', async () => {
    const accountId = 'acct-grace';
    expect((await api.post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'funds', amount: '10' })).status).toBe(201);
    const placed = await api.post(`/v1/accounts/${accountId}/authorizations`, { amount: '6', hold: { holdId: 'video', ttlSeconds: 1 } });
    expect(placed).toMatchObject({ status: 200, body: { allowed: true, available: '4', hold: { holdId: 'video', amount: '6' } } });
    const settleBy = Date.parse(placed.body.hold.expiresAt);
    // The answer's expiresAt is the TTL asked; the hold's event carries when its credits are released.
    const [holdPlaced] = await holdEvents(accountId, 'video');
    expect(holdPlaced).toMatchObject({ type: 'HoldPlaced' });
    expect(Date.parse(holdPlaced.data.expiresAt) - settleBy).toBe(GRACE_SECONDS * 1000);

    // The TTL is over (and the expiry worker, which polls every 0.5 s, has had a second more): still reserved.
    await sleep(Math.max(0, settleBy + 1_000 - Date.now()));
    expect(await balance(accountId)).toMatchObject({ held: '6', available: '4' });
    expect((await api.post(`/v1/accounts/${accountId}/authorizations`, { amount: '6' })).body).toMatchObject({ code: 'INSUFFICIENT_CREDITS' });
    // A repeat of the authorization after its TTL is answered as a closed hold, as without the grace.
    expect((await api.post(`/v1/accounts/${accountId}/authorizations`, { amount: '6', hold: { holdId: 'video', ttlSeconds: 1 } })).body).toMatchObject({ code: 'HOLD_CLOSED' });

    // The usage occurred within the TTL: 1,200,000 input and 300,000 output tokens of gpt-4o are 3 + 3 = 6 credits.
    const usage = { id: 'video-usage', accountId, occurredAt: new Date(settleBy - 200).toISOString(), feature: 'chat', model: 'gpt-4o', inputTokens: 1_200_000, outputTokens: 300_000, holdId: 'video' };
    expect((await reportUsage(ingest.base, usage)).status).toBe(202);
    await waitFor(async () => (await holdEvents(accountId, 'video')).some((event) => event.type === 'HoldSettled'), 20_000);
    expect((await holdEvents(accountId, 'video')).map((event) => event.type)).toEqual(['HoldPlaced', 'HoldSettled', 'UsageDebited']);
    expect(await balance(accountId)).toMatchObject({ held: '0', available: '4' });
  });

  it('releases a hold nobody settles once the grace after its TTL is over, not before', async () => {
    const accountId = 'acct-grace-unused';
    expect((await api.post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'funds', amount: '10' })).status).toBe(201);
    const placed = await api.post(`/v1/accounts/${accountId}/authorizations`, { amount: '3', hold: { holdId: 'abandoned', ttlSeconds: 1 } });
    expect(placed.status).toBe(200);
    const releaseAt = Date.parse(placed.body.hold.expiresAt) + GRACE_SECONDS * 1000;
    const released = await waitFor(async () => (await holdEvents(accountId, 'abandoned')).find((event) => event.type === 'HoldReleased'), 20_000);
    expect(released.data.reason).toBe('expired');
    expect(released.recorded_at.getTime()).toBeGreaterThanOrEqual(releaseAt - 50); // recorded_at: the transaction's start
    await waitFor(async () => {
      const now = await balance(accountId);
      return now.held === '0' && now.available === '10';
    }, 10_000);
  });
});

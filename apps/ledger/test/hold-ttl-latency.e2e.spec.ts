import { setTimeout as sleep } from 'node:timers/promises';
import type { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { testDatabaseUrl, waitFor } from '@tally/testing';
import { createTestSchema, createTopics, json, ledgerTestSettings, startLedger } from './ledger.harness';

/**
 * Found by the fault run (npm run chaos, seed 7, under load): a valid authorization with a short hold TTL was
 * refused with 400 INVALID_COMMAND ("expiresAt must be after now"). The handler turned the TTL into an instant when
 * the request arrived; the account repository decides at its own, later instant (after scheduling the expiry,
 * loading the account, losing a race for it); when more than the TTL passed in between, the decider saw a hold
 * already due. The TTL runs from when the hold is placed: a valid request gets its hold.
 *
 * The delay is made on the real database: the test holds a lock on the ledger's expiries table for 1.5 s, so the
 * handler's expiry insert (between reading the clock and deciding) waits longer than the 1 s TTL.
 */
describe('a hold whose decision comes later than its TTL after the request', () => {
  const { env, topics } = ledgerTestSettings();
  let app: INestApplication;
  let api: ReturnType<typeof json>;
  let schema: string;
  let drop: () => Promise<void>;
  let db: Client;

  beforeAll(async () => {
    const created = await createTestSchema('ledger_hold_ttl');
    ({ schema, drop } = created);
    await createTopics(topics);
    const started = await startLedger(env, schema, undefined);
    app = started.app;
    api = json(started.base);
    db = new Client({ connectionString: testDatabaseUrl() });
    await db.connect();
  });

  afterAll(async () => {
    await db?.end();
    await app?.close();
    await drop?.();
  });

  it('is placed (then expires a TTL later), not refused as already due', async () => {
    expect((await api.post('/v1/accounts/acct-slow/grants', { reason: 'test grant', idempotencyKey: 'g', amount: '10' })).status).toBe(201);
    await db.query('begin');
    await db.query(`lock table "${schema}".expiries in share row exclusive mode`);
    const answer = api.post('/v1/accounts/acct-slow/authorizations', { amount: '4', hold: { holdId: 'h-1', ttlSeconds: 1 } });
    // The request read the clock on arrival; it cannot be decided while the lock is held (its expiry insert, or the
    // connection it waits for, is blocked), so its decision comes more than the TTL later.
    await sleep(1_500);
    expect(await Promise.race([answer.then(() => 'answered'), sleep(10).then(() => 'waiting')])).toBe('waiting');
    await db.query('commit');
    const held = await answer;
    expect(held).toMatchObject({ status: 200, body: { allowed: true, hold: { holdId: 'h-1', amount: '4' } } });
    // It was placed, and it expires a TTL after it was placed: both are in the history.
    const history = await waitFor(async () => {
      const { status, body } = await api.get('/v1/accounts/acct-slow/transactions');
      const types = status === 200 ? (body.items as { type: string }[]).map((item) => item.type) : [];
      return types.includes('HoldPlaced') && types.includes('HoldReleased') ? body.items : undefined;
    }, 20_000);
    expect(history[0]).toMatchObject({ type: 'HoldReleased', amount: '4', details: { holdId: 'h-1', reason: 'expired' } });
  });
});

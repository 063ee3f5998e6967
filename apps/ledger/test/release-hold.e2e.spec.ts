import type { INestApplication } from '@nestjs/common';
import { ManualClock } from '@tally/shared';
import { API_KEY, createTestSchema, createTopics, json, ledgerTestSettings, startLedger } from './ledger.harness';

/**
 * Releasing a hold answers the amount that hold freed. Every command first releases the account's holds that are
 * due (the expiry worker may not have yet: it polls, and runs only where the commands consumer runs), so the
 * decision can hold another hold's release before this one's. No expiry worker here (WORKERS=relay,projection) and
 * a manual clock, so the other hold is due and not yet released when the request comes.
 */
describe('releasing a hold while another one is due', () => {
  const { env, topics } = ledgerTestSettings();
  const clock = new ManualClock(new Date('2026-06-15T10:00:00.000Z'));
  let app: INestApplication;
  let api: ReturnType<typeof json>;
  let base: string;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    let schema: string;
    ({ schema, drop } = await createTestSchema('ledger_release'));
    await createTopics(topics);
    ({ app, base } = await startLedger({ ...env, WORKERS: 'relay,projection', LOG_LEVEL: 'silent' }, schema, clock));
    api = json(base);
  });

  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it('answers the amount of the hold it released, not the due one released before it in the same decision', async () => {
    expect((await api.post('/v1/accounts/acct-two-holds/grants', { reason: 'test grant', idempotencyKey: 'funds', amount: '10' })).status).toBe(201);
    expect((await api.post('/v1/accounts/acct-two-holds/authorizations', { amount: '7', hold: { holdId: 'short', ttlSeconds: 60 } })).body).toMatchObject({ allowed: true, available: '3' });
    expect((await api.post('/v1/accounts/acct-two-holds/authorizations', { amount: '2', hold: { holdId: 'long', ttlSeconds: 3600 } })).body).toMatchObject({ allowed: true, available: '1' });
    clock.advance(61_000); // the short hold is due; nothing has released it

    const response = await fetch(`${base}/v1/accounts/acct-two-holds/holds/long`, { method: 'DELETE', headers: { authorization: `Bearer ${API_KEY}` } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ holdId: 'long', released: '2', available: '10' });
  });
  // A lost answer retried later (the same hold id and body) finds the hold no longer open: answering it "allowed" with
  // an expiry of its own making would send the caller to work on credits nothing reserves.
  describe('a hold asked for again after it closed', () => {
    const release = (account: string, holdId: string) =>
      fetch(`${base}/v1/accounts/${account}/holds/${holdId}`, { method: 'DELETE', headers: { authorization: `Bearer ${API_KEY}` } });

    it.each([
      ['released', 'acct-closed-released'],
      ['expired', 'acct-closed-expired'],
    ])('is refused when the hold was %s (HOLD_CLOSED, 409), and reserves nothing', async (how, account) => {
      expect((await api.post(`/v1/accounts/${account}/grants`, { reason: 'test grant', idempotencyKey: 'funds', amount: '10' })).status).toBe(201);
      const request = { amount: '4', hold: { holdId: 'h-closed', ttlSeconds: 60 } };
      expect(await api.post(`/v1/accounts/${account}/authorizations`, request)).toMatchObject({ status: 200, body: { available: '6', hold: { holdId: 'h-closed' } } });
      if (how === 'released') expect((await release(account, 'h-closed')).status).toBe(200);
      else clock.advance(61_000);

      const retry = await api.post(`/v1/accounts/${account}/authorizations`, request);

      expect(retry).toMatchObject({ status: 409, body: { code: 'HOLD_CLOSED', details: { holdId: 'h-closed' } } });
      expect((await api.post(`/v1/accounts/${account}/authorizations`, { amount: '10' })).body).toMatchObject({ allowed: true, available: '10' });
      // Other content under the id stays a conflict, and a new id places a new hold.
      expect(await api.post(`/v1/accounts/${account}/authorizations`, { ...request, amount: '5' })).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT' } });
      expect(await api.post(`/v1/accounts/${account}/authorizations`, { ...request, hold: { holdId: 'h-new', ttlSeconds: 60 } })).toMatchObject({ status: 200, body: { available: '6' } });
    });
  });
});

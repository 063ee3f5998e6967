import type { INestApplication } from '@nestjs/common';
import { ManualClock } from '@tally/shared';
import { API_KEY, createTestSchema, createTopics, json, ledgerTestSettings, startLedger } from './ledger.harness';

/**
 * A hold priced from a usage estimate is retried (a timeout, a 503) just after the rate card's next version took
 * effect: the retry is the same request, so it gets the hold placed the first time, not IDEMPOTENCY_CONFLICT.
 * config/rate-card.yaml lowers o3 from 10 to 2 credits per million input tokens at 2026-11-01T00:00:00Z; a manual
 * clock stands just before it. Real HTTP and PostgreSQL.
 */
describe('a hold priced from a usage, retried across a rate card change', () => {
  const { env, topics } = ledgerTestSettings();
  const clock = new ManualClock(new Date('2026-10-31T23:59:59.000Z'));
  const account = '/v1/accounts/acct-rate-change';
  const estimate = { feature: 'chat', model: 'o3', inputTokens: 1_000_000, outputTokens: 0 };
  let app: INestApplication;
  let api: ReturnType<typeof json>;
  let base: string;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const created = await createTestSchema('ledger_hold_rate_change');
    drop = created.drop;
    await createTopics(topics);
    ({ app, base } = await startLedger({ ...env, WORKERS: 'none', LOG_LEVEL: 'silent' }, created.schema, clock));
    api = json(base);
    expect((await api.post(`${account}/purchases`, { paymentReference: 'p-rate-change', amount: '100' })).status).toBe(201);
  });

  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it('answers the retry with the hold first placed, and reserves nothing more', async () => {
    const request = { usage: estimate, hold: { holdId: 'h-across', ttlSeconds: 600 } };
    const first = await api.post(`${account}/authorizations`, request);
    expect(first).toMatchObject({ status: 200, body: { required: '10', hold: { holdId: 'h-across', amount: '10' } } });

    clock.advance(2_000); // the next version prices the same estimate at 2 credits
    const retry = await api.post(`${account}/authorizations`, request);

    expect(retry).toMatchObject({ status: 200, body: { allowed: true, required: '10', available: '90', hold: { holdId: 'h-across', amount: '10', expiresAt: first.body.hold.expiresAt } } });
    // From the ledger's own state (no projection runs here): 10 held once, not 10 and 2.
    expect((await api.post(`${account}/authorizations`, { amount: '1' })).body).toMatchObject({ allowed: true, available: '90' });
  });

  it('still refuses another estimate under the same hold id (IDEMPOTENCY_CONFLICT)', async () => {
    const other = await api.post(`${account}/authorizations`, { usage: { ...estimate, inputTokens: 3_000_000 }, hold: { holdId: 'h-across', ttlSeconds: 600 } });

    expect(other).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT' } });
  });

  it('refuses another amount under the same hold id even when its usage would price as the hold (the amount is what is held)', async () => {
    const other = await api.post(`${account}/authorizations`, { amount: '5', usage: estimate, hold: { holdId: 'h-across', ttlSeconds: 600 } });

    expect(other).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT' } });
  });

  it('answers a retry of a hold released since as any retry of a closed hold is (HOLD_CLOSED), and reserves nothing', async () => {
    const released = '/v1/accounts/acct-rate-change-released';
    expect((await api.post(`${released}/purchases`, { paymentReference: 'p-rate-change-released', amount: '100' })).status).toBe(201);
    clock.set('2026-10-31T23:59:59.000Z');
    const request = { usage: estimate, hold: { holdId: 'h-released', ttlSeconds: 600 } };
    expect(await api.post(`${released}/authorizations`, request)).toMatchObject({ status: 200, body: { hold: { amount: '10' } } });
    const release = await fetch(`${base}${released}/holds/h-released`, { method: 'DELETE', headers: { authorization: `Bearer ${API_KEY}` } });
    expect(release.status).toBe(200);

    clock.advance(2_000);
    const retry = await api.post(`${released}/authorizations`, request);

    expect(retry).toMatchObject({ status: 409, body: { code: 'HOLD_CLOSED', details: { holdId: 'h-released' } } });
    expect((await api.post(`${released}/authorizations`, { amount: '1' })).body).toMatchObject({ allowed: true, available: '100' });
    // Another estimate under that id is still other content.
    expect(await api.post(`${released}/authorizations`, { ...request, usage: { ...estimate, inputTokens: 3_000_000 } })).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT' } });
  });

  it('refuses another estimate that only an earlier version would price as the hold: open, or released a TTL after the change', async () => {
    const later = '/v1/accounts/acct-rate-change-later';
    expect((await api.post(`${later}/purchases`, { paymentReference: 'p-rate-change-later', amount: '100' })).status).toBe(201);
    const fiveMillion = { ...estimate, inputTokens: 5_000_000 }; // 10 credits by the new version
    const oneMillion = estimate; // 2 credits by the new version, 10 by the one before
    clock.set('2026-11-01T00:00:05.000Z');
    const open = { holdId: 'h-open-after', ttlSeconds: 600 };
    expect(await api.post(`${later}/authorizations`, { usage: fiveMillion, hold: open })).toMatchObject({ status: 200, body: { hold: { amount: '10' } } });
    expect(await api.post(`${later}/authorizations`, { usage: oneMillion, hold: open })).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT' } });

    clock.set('2026-11-01T01:00:00.000Z');
    const released = { holdId: 'h-released-after', ttlSeconds: 600 };
    expect(await api.post(`${later}/authorizations`, { usage: fiveMillion, hold: released })).toMatchObject({ status: 200, body: { hold: { amount: '10' } } });
    expect((await fetch(`${base}${later}/holds/h-released-after`, { method: 'DELETE', headers: { authorization: `Bearer ${API_KEY}` } })).status).toBe(200);
    clock.advance(1_000);
    expect(await api.post(`${later}/authorizations`, { usage: oneMillion, hold: released })).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT' } });
  });
});

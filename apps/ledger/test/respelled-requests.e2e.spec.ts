import type { INestApplication } from '@nestjs/common';
import { createTestSchema, createTopics, json, ledgerTestSettings, startLedger } from './ledger.harness';

/**
 * Requests that look unusual but mean the same command, and the longest ids. Malformed requests are fuzzed from the
 * OpenAPI document in http-fuzz.e2e.spec.ts.
 */
describe('the ledger reads unusual but valid requests as what they mean', () => {
  const { env, topics } = ledgerTestSettings();
  let app: INestApplication;
  let base: string;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const created = await createTestSchema('ledger_respelled');
    drop = created.drop;
    await createTopics(topics);
    ({ app, base } = await startLedger({ ...env, WORKERS: 'none', LOG_LEVEL: 'silent' }, created.schema));
  });

  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it('treats a grant, purchase or hold retried with its keys in another order and its values respelled as the same command', async () => {
    const api = json(base);
    const account = '/v1/accounts/acct-respelled';
    expect((await api.post(`${account}/grants`, { idempotencyKey: 'g-1', amount: '5', expiresAt: '2099-01-01T00:00:00Z', reason: 'promo' })).status).toBe(201);
    const grant = await api.post(`${account}/grants`, { reason: 'promo', expiresAt: '2099-01-01T00:00:00.000Z', amount: '5.000000', idempotencyKey: 'g-1' });
    expect(grant).toMatchObject({ status: 200, body: { duplicate: true } });
    expect((await api.post(`${account}/purchases`, { paymentReference: 'p-1', amount: '2' })).status).toBe(201);
    expect(await api.post(`${account}/purchases`, { amount: '2.0', paymentReference: 'p-1' })).toMatchObject({ status: 200, body: { duplicate: true } });
    expect((await api.post(`${account}/authorizations`, { amount: '1', hold: { holdId: 'h-1', ttlSeconds: 60 } })).status).toBe(200);
    expect((await api.post(`${account}/authorizations`, { hold: { ttlSeconds: 60, holdId: 'h-1' }, amount: '1.00' })).status).toBe(200);
    expect((await api.get(`${account}/balance?at=${new Date().toISOString()}`)).body).toMatchObject({ available: '6', held: '1' });
  });

  it('refuses a grant or purchase retried under its key with other content (another reason, a pack for an amount): 409, nothing granted', async () => {
    const api = json(base);
    const account = '/v1/accounts/acct-other-content';
    expect((await api.post(`${account}/grants`, { idempotencyKey: 'g-1', amount: '5', reason: 'welcome' })).status).toBe(201);
    expect((await api.post(`${account}/purchases`, { paymentReference: 'p-1', packId: 'pack-1000' })).status).toBe(201);

    const otherReason = await api.post(`${account}/grants`, { idempotencyKey: 'g-1', amount: '5', reason: 'apology for an outage' });
    const amountForPack = await api.post(`${account}/purchases`, { paymentReference: 'p-1', amount: '1000' });

    expect(otherReason).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT' } });
    expect(amountForPack).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT' } });
    expect((await api.get(`${account}/balance?at=${new Date().toISOString()}`)).body).toMatchObject({ available: '1005' });
  });

  it('takes an account id as long as the id pattern allows (128 characters) in the path', async () => {
    const longId = 'a'.repeat(128);
    const response = await json(base).post(`/v1/accounts/${longId}/grants`, { reason: 'test grant', idempotencyKey: 'long-id', amount: '1' });
    expect(response.status).toBe(201);
  });
});

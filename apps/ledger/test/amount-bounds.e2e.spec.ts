import type { Producer } from 'kafkajs';
import { waitFor, type ServiceProcess } from '@tally/testing';
import { collect, json, ledgerTestSettings, reportUsage, startLedgerWithIngest, storedBalance, waitForAvailable } from './ledger.harness';

/**
 * Amounts have an upper bound (libs/money: 1,000,000,000 credits per amount, 100,000,000,000 per balance), so
 * nothing the API accepts can overflow a bigint column of a read model. Every topic has ONE partition here:
 * should an oversized amount get through, the projection would stall and every later balance below would wait.
 */
describe('amount bounds on the real HTTP API, broker and database', () => {
  const { env, topics } = ledgerTestSettings();
  let api: ReturnType<typeof json>;
  let producer: Producer;
  let ingest: ServiceProcess;
  let stop: () => Promise<void>;

  const BOUND = '1000000000';
  const BALANCE_BOUND = '100000000000';
  const OVERSIZED = '99999999999999999999999';

  const balanceOf = (accountId: string) => api.get(`/v1/accounts/${accountId}/balance`);
  const waitForBalance = (accountId: string, available: string) => waitForAvailable(api, accountId, available);

  beforeAll(async () => {
    ({ api, producer, ingest, stop } = await startLedgerWithIngest('bounds', env, topics));
  });

  afterAll(async () => {
    await stop?.();
  });

  it('refuses a grant, a purchase and an authorization above the per-amount bound with 400 VALIDATION_FAILED and stores nothing', async () => {
    const justAbove = `${BOUND}.000001`;
    for (const amount of [OVERSIZED, justAbove]) {
      const grant = await api.post('/v1/accounts/acct-huge/grants', { reason: 'test grant', idempotencyKey: `huge-${amount}`, amount });
      expect(grant.status).toBe(400);
      expect(grant.body).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'amount', reason: expect.stringContaining(BOUND) }] });

      const purchase = await api.post('/v1/accounts/acct-huge/purchases', { paymentReference: `pi-${amount}`, amount });
      expect(purchase.status).toBe(400);
      expect(purchase.body).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'amount' }] });

      const authorization = await api.post('/v1/accounts/acct-huge/authorizations', { amount });
      expect(authorization.status).toBe(400);
      expect(authorization.body).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'amount' }] });
    }
    expect(await storedBalance(api, 'acct-huge')).toMatchObject({ status: 404, body: { code: 'ACCOUNT_NOT_FOUND' } });
  });

  it('accepts a grant and a purchase of exactly the bound, and the balance read model shows them', async () => {
    const grant = await api.post('/v1/accounts/acct-at-bound/grants', { reason: 'test grant', idempotencyKey: 'at-bound', amount: BOUND });
    expect(grant).toMatchObject({ status: 201, body: { amount: BOUND } });
    const purchase = await api.post('/v1/accounts/acct-at-bound/purchases', { paymentReference: 'pi-at-bound', amount: BOUND });
    expect(purchase).toMatchObject({ status: 201, body: { amount: BOUND } });

    const balance = await waitForBalance('acct-at-bound', '2000000000');
    expect(balance.byKind).toEqual({ allowance: '0', promotional: BOUND, purchased: BOUND });
  });

  it('refuses a grant that would lift the balance above the balance bound with 400 BALANCE_LIMIT_EXCEEDED; the read model holds the bound', async () => {
    for (let index = 0; index < 100; index++) {
      const { status } = await api.post('/v1/accounts/acct-full/grants', { reason: 'test grant', idempotencyKey: `fill-${index}`, amount: BOUND });
      expect(status).toBe(201);
    }
    const over = await api.post('/v1/accounts/acct-full/grants', { reason: 'test grant', idempotencyKey: 'one-too-many', amount: '0.000001' });
    expect(over.status).toBe(400);
    // Amounts in its details as everywhere on the wire: decimal credits, not micro-credits.
    expect(over.body).toMatchObject({ code: 'BALANCE_LIMIT_EXCEEDED', details: { balance: 'balance', wouldBe: '100000000000.000001', max: BALANCE_BOUND } });
    const overPurchase = await api.post('/v1/accounts/acct-full/purchases', { paymentReference: 'pi-one-too-many', amount: '1' });
    expect(overPurchase).toMatchObject({ status: 400, body: { code: 'BALANCE_LIMIT_EXCEEDED' } });

    const balance = await waitForBalance('acct-full', BALANCE_BOUND);
    expect(balance.byKind.promotional).toBe(BALANCE_BOUND);
  });

  it('starts a renewal on a full balance with the part of its allowance that fits (none), never dead-lettered: the account is not left between cycles', async () => {
    // After the test above: acct-full holds the balance bound. Refused, the renewal left the account between cycles
    // (its usage deferred, its purchased credits never spent), and every later renewal was refused the same way.
    const dlq = await collect(env.SUBSCRIPTION_DLQ_TOPIC);
    try {
      const now = new Date().toISOString();
      const periodEnd = new Date(Date.now() + 30 * 86_400_000).toISOString();
      const cycle = (accountId: string) => ({
        key: accountId,
        value: JSON.stringify({
          id: `cycle-${accountId}`, type: 'CycleStarted', version: 1, accountId, occurredAt: now,
          data: { cycleId: `cycle-${accountId}`, planId: 'starter', periodStart: now, periodEnd, allocation: '1000', unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry' },
        }),
      });
      await producer.send({ topic: env.SUBSCRIPTION_EVENTS_TOPIC, messages: [cycle('acct-full'), cycle('acct-after-full')] });
      await waitForBalance('acct-after-full', '1000');
      const full = await waitFor(async () => {
        const { body } = await balanceOf('acct-full');
        return body.cycleId === 'cycle-acct-full' ? body : undefined;
      });
      expect(full).toMatchObject({ available: BALANCE_BOUND, allocation: '1000', byKind: { allowance: '0' } });
      // Applied, so not dead-lettered.
      expect(dlq.messages.filter((m) => m.value.includes('cycle-acct-full'))).toEqual([]);
      // Usage is paid from the credits it holds, not deferred as while a renewal is pending.
      expect(await api.post('/v1/accounts/acct-full/authorizations', { amount: '1' })).toMatchObject({ status: 200, body: { allowed: true } });
    } finally {
      await dlq.stop();
    }
  });

  it('dead-letters usage produced straight to Kafka whose price exceeds the bound, and keeps applying the partition', async () => {
    const dlq = await collect(env.USAGE_DLQ_TOPIC);
    try {
      await api.post('/v1/accounts/acct-video/grants', { reason: 'test grant', idempotencyKey: 'video', amount: '10' });
      // veo-3 at 0.75 credits/s on the 2026-06-01 card: 2,147,483,647 s cost 1,610,612,735.25 credits > the bound.
      const envelope = (id: string, data: object) =>
        JSON.stringify({ id, type: 'UsageRecorded', version: 1, accountId: 'acct-video', occurredAt: '2026-06-15T00:00:00Z', data });
      await producer.send({
        topic: env.USAGE_EVENTS_TOPIC,
        messages: [
          { key: 'acct-video', value: envelope('endless-video', { feature: 'video', model: 'veo-3', videoSeconds: 2_147_483_647 }) },
          { key: 'acct-video', value: envelope('short-video', { feature: 'video', model: 'veo-3', videoSeconds: 4 }) },
        ],
      });
      await waitForBalance('acct-video', '7');
      const dead = await waitFor(() => dlq.messages.find((m) => m.value.includes('endless-video')));
      expect(dead.headers['x-dead-letter-reason']).toBe('AMOUNT_OUT_OF_RANGE');
      expect(JSON.parse(dead.headers['x-dead-letter-details'])).toMatchObject({ field: 'videoSeconds' });
    } finally {
      await dlq.stop();
    }
  });

  it('usage-ingest refuses usage whose price exceeds the bound with 400 VALIDATION_FAILED naming the field, and produces nothing', async () => {
    const report = (body: object) => reportUsage(ingest.base, body);
    await api.post('/v1/accounts/acct-ingest/grants', { reason: 'test grant', idempotencyKey: 'ingest', amount: '10' });
    const endless = { id: 'ingest-endless', accountId: 'acct-ingest', occurredAt: '2026-06-15T00:00:00Z', feature: 'video', model: 'veo-3', videoSeconds: 2_147_483_647 };
    const refused = await report({ events: [{ ...endless, id: 'ingest-fine', videoSeconds: 2 }, endless] });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'events.1.videoSeconds', reason: expect.stringContaining('1000000000') }] });

    // The batch was refused whole: the next event is the first this account is charged for.
    expect((await report({ ...endless, id: 'ingest-short', videoSeconds: 4 })).status).toBe(202);
    await waitForBalance('acct-ingest', '7');
  });
});

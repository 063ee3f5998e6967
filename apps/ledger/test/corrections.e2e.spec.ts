import type { INestApplication } from '@nestjs/common';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { TallyClient } from '@tally/client';
import { formatCredits, parseCredits } from '@tally/money';
import { testKafkaBrokers, waitFor } from '@tally/testing';
import { API_KEY, createTestSchema, createTopics, json, ledgerTestSettings, startLedger } from './ledger.harness';

/**
 * Corrections (issue 18 item 4) on the real broker and database: refunds of usage debits and voids of grants and
 * purchases, through the ledger's HTTP API, its usage consumer, relay and projection.
 */
describe('corrections: refunds and voids', () => {
  const { env, topics } = ledgerTestSettings();
  let app: INestApplication;
  let base: string;
  let api: ReturnType<typeof json>;
  let producer: Producer;
  let drop: () => Promise<void>;
  const DAY = 86_400_000;

  /** gpt-4o output: 10 credits per million tokens, so `credits` × 100,000 output tokens. */
  const useCredits = async (accountId: string, id: string, credits: number) =>
    producer.send({
      topic: env.USAGE_EVENTS_TOPIC,
      messages: [{
        key: accountId,
        value: JSON.stringify({
          id, type: 'UsageRecorded', version: 1, accountId, occurredAt: new Date().toISOString(),
          data: { feature: 'chat', model: 'gpt-4o', inputTokens: 0, outputTokens: credits * 100_000 },
        }),
      }],
    });
  const startCycle = (accountId: string, cycleId: string, start: number, allocation: string) =>
    producer.send({
      topic: env.SUBSCRIPTION_EVENTS_TOPIC,
      messages: [{
        key: accountId,
        value: JSON.stringify({
          id: cycleId, type: 'CycleStarted', version: 1, accountId, occurredAt: new Date().toISOString(),
          data: { cycleId, planId: 'starter', periodStart: new Date(start).toISOString(), periodEnd: new Date(start + 30 * DAY).toISOString(), allocation, unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry' },
        }),
      }],
    });
  const waitForBalance = (accountId: string, available: string) =>
    waitFor(async () => {
      const { status, body } = await api.get(`/v1/accounts/${accountId}/balance`);
      return status === 200 && body.available === available ? body : undefined;
    }, 20_000);
  const refund = (accountId: string, usageId: string, body: object) => api.post(`/v1/accounts/${accountId}/usage/${usageId}/refunds`, body);
  const voidGrant = (accountId: string, grantId: string, body: object) => api.post(`/v1/accounts/${accountId}/grants/${grantId}/void`, body);
  const history = async (accountId: string) => (await api.get(`/v1/accounts/${accountId}/transactions?limit=200`)).body.items as Record<string, any>[];
  /** The history, once the projection has applied `streamVersion`s up to the balance's. */
  const historyWith = (accountId: string, type: string, count = 1) =>
    waitFor(async () => {
      const items = await history(accountId);
      return items.filter((item) => item.type === type).length >= count ? items : undefined;
    }, 20_000);
  /** The transaction history adds up: its entries sum to each row's balance and to the net balance. */
  const expectHistoryAddsUp = async (accountId: string) => {
    const items = (await history(accountId)).reverse();
    let sum = 0n;
    for (const item of items) {
      sum += item.amount === null ? 0n : parseCredits(item.amount);
      expect({ streamVersion: item.streamVersion, sum: formatCredits(sum) }).toEqual({ streamVersion: item.streamVersion, sum: item.balanceAfter });
    }
    const { body: balance } = await api.get(`/v1/accounts/${accountId}/balance`);
    expect(formatCredits(sum)).toBe(formatCredits(parseCredits(balance.available) - parseCredits(balance.overdraft)));
  };

  beforeAll(async () => {
    const created = await createTestSchema('ledger_corrections');
    drop = created.drop;
    await createTopics(topics);
    ({ app, base } = await startLedger(env, created.schema));
    api = json(base);
    producer = new Kafka({ clientId: 'corrections-e2e', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
  });

  afterAll(async () => {
    await producer?.disconnect();
    await app?.close();
    await drop?.();
  });

  describe('refunding a usage debit', () => {
    const A = 'acct-refund';

    beforeAll(async () => {
      await startCycle(A, 'cycle-a-0', Date.now() - DAY, '10');
      await waitForBalance(A, '10');
      expect((await api.post(`/v1/accounts/${A}/purchases`, { paymentReference: 'pay-a-1', amount: '50' })).status).toBe(201);
      await useCredits(A, 'use-a-1', 20); // 10 from the allowance, then 10 purchased
      await waitForBalance(A, '40');
    });

    it('gives the credits back to the buckets the debit took them from, last taken first; the history adds up', async () => {
      const refunded = await refund(A, 'use-a-1', { idempotencyKey: 'ticket-1', amount: '12', reason: 'answer was cut off' });
      expect(refunded.status).toBe(201);
      expect(refunded.body).toMatchObject({
        accountId: A, usageId: 'use-a-1', refundId: 'refund:ticket-1', amount: '12', refundable: '8', duplicate: false, reason: 'answer was cut off',
        restored: [{ bucketId: 'purchase:pay-a-1', kind: 'purchased', amount: '10' }, { bucketId: 'allowance:cycle-a-0', kind: 'allowance', amount: '2' }],
        forfeited: [], reissued: null, overdraftReduced: '0', uncharged: '0',
      });
      const balance = await waitForBalance(A, '52');
      expect(balance).toMatchObject({ byKind: { allowance: '2', promotional: '0', purchased: '50' }, usedThisCycle: '8' });

      // The history shows the refund next to the debit it corrects (each names the other), with its actor and reason.
      const items = await historyWith(A, 'UsageRefunded');
      const debit = items.find((item) => item.type === 'UsageDebited');
      const refundRow = items.find((item) => item.type === 'UsageRefunded');
      expect(refundRow).toMatchObject({
        amount: '12', actor: 'test',
        details: { corrects: { type: 'UsageDebited', usageId: 'use-a-1', streamVersion: debit?.streamVersion }, refunded: '12', reason: 'answer was cut off' },
      });
      expect(debit?.details.corrections).toEqual([{ type: 'UsageRefunded', streamVersion: refundRow?.streamVersion, amount: '12' }]);
      await expectHistoryAddsUp(A);

      // Usage totals and the export count the usage net of its refunds; it is still a request made.
      const usage = await api.get(`/v1/accounts/${A}/usage?period=30d`);
      expect(usage.body.totals).toEqual({ credits: '8', requests: 1 });
      expect(usage.body.byModel).toEqual([{ model: 'gpt-4o', credits: '8', requests: 1 }]);
      const csv = await (await fetch(`${base}/v1/accounts/${A}/usage/export?period=30d`, { headers: { authorization: `Bearer ${API_KEY}` } })).text();
      const [header, row] = csv.trim().split('\n');
      expect(header.split(',')[9]).toBe('credits');
      expect(row.split(',')[9]).toBe('8');
    });

    it('partial refunds add up; a refund beyond what is left is refused with what is left', async () => {
      expect((await refund(A, 'use-a-1', { idempotencyKey: 'ticket-2', amount: '5', reason: 'second look' })).body).toMatchObject({ amount: '5', refundable: '3' });
      const over = await refund(A, 'use-a-1', { idempotencyKey: 'ticket-3', amount: '5', reason: 'too much' });
      expect(over.status).toBe(409);
      expect(over.body).toMatchObject({ code: 'REFUND_EXCEEDS_DEBIT', details: { field: 'amount', refundable: '3', requested: '5', debited: '20' } });
      // No amount: all that is left; then nothing is left.
      expect((await refund(A, 'use-a-1', { idempotencyKey: 'ticket-4', reason: 'the rest' })).body).toMatchObject({ amount: '3', refundable: '0' });
      expect((await refund(A, 'use-a-1', { idempotencyKey: 'ticket-5', reason: 'again' })).body).toMatchObject({ code: 'REFUND_EXCEEDS_DEBIT', details: { refundable: '0' } });
      await waitForBalance(A, '60');
      await historyWith(A, 'UsageRefunded', 3);
      await expectHistoryAddsUp(A);
      expect((await api.get(`/v1/accounts/${A}/usage?period=30d`)).body.totals).toEqual({ credits: '0', requests: 1 });
    });

    it('is idempotent by key: a replay answers the first result with 200; other content under the key is 409', async () => {
      const replay = await refund(A, 'use-a-1', { idempotencyKey: 'ticket-2', amount: '5', reason: 'second look' });
      expect(replay.status).toBe(200);
      expect(replay.body).toMatchObject({ refundId: 'refund:ticket-2', amount: '5', duplicate: true, restored: [{ bucketId: 'allowance:cycle-a-0', kind: 'allowance', amount: '5' }] });
      const conflict = await refund(A, 'use-a-1', { idempotencyKey: 'ticket-2', amount: '4', reason: 'second look' });
      expect(conflict).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT' } });
      expect((await api.get(`/v1/accounts/${A}/balance`)).body.available).toBe('60');
    });

    it('answers 404 USAGE_NOT_FOUND and 400 naming the field for client mistakes, never a 5xx', async () => {
      expect((await refund(A, 'never-used', { idempotencyKey: 'x1', reason: 'r' })).body).toMatchObject({ code: 'USAGE_NOT_FOUND' });
      expect((await refund(A, 'never-used', { idempotencyKey: 'x1', reason: 'r' })).status).toBe(404);
      expect((await refund('acct-never-seen', 'u', { idempotencyKey: 'x1', reason: 'r' })).status).toBe(404);
      for (const [body, field] of [
        [{ idempotencyKey: 'x2' }, 'reason'],
        [{ idempotencyKey: 'x2', reason: '   ' }, 'reason'],
        [{ idempotencyKey: 'x2', reason: 'x'.repeat(501) }, 'reason'],
        [{ idempotencyKey: 'x2', reason: 'r', amount: '-1' }, 'amount'],
        [{ idempotencyKey: 'x2', reason: 'r', amount: 1 }, 'amount'],
        [{ idempotencyKey: 'x2', reason: 'r', restoreExpired: 'yes' }, 'restoreExpired'],
        [{ reason: 'r' }, 'idempotencyKey'],
      ] as const) {
        const refused = await refund(A, 'use-a-1', body);
        expect({ field, status: refused.status }).toEqual({ field, status: 400 });
        expect(refused.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
      }
      expect((await refund(A, 'bad id!', { idempotencyKey: 'x3', reason: 'r' })).status).toBe(400);
    });
  });

  describe('refunding a debit of an allowance that has expired since', () => {
    const B = 'acct-expired';

    beforeAll(async () => {
      await startCycle(B, 'cycle-b-0', Date.now() - 2 * DAY, '10');
      await waitForBalance(B, '10');
      await useCredits(B, 'use-b-1', 4);
      await useCredits(B, 'use-b-2', 2);
      await waitForBalance(B, '4');
      await startCycle(B, 'cycle-b-1', Date.now() - DAY, '10'); // the old allowance (4 left) expires
      await waitFor(async () => ((await api.get(`/v1/accounts/${B}/balance`)).body.cycleId === 'cycle-b-1' ? true : undefined), 20_000);
      await waitForBalance(B, '10');
    });

    it('does not resurrect the expired credits: the usage is refunded, the balance does not grow', async () => {
      const refunded = await refund(B, 'use-b-1', { idempotencyKey: 'b-1', reason: 'model error' });
      expect(refunded.body).toMatchObject({ amount: '4', restored: [], forfeited: [{ bucketId: 'allowance:cycle-b-0', kind: 'allowance', amount: '4' }], reissued: null });
      expect(refunded.body.balance).toMatchObject({ available: '10', byKind: { allowance: '10', promotional: '0', purchased: '0' } });
    });

    it('with restoreExpired gives them back as a promotional bucket without expiry, not into the current allowance', async () => {
      const refunded = await refund(B, 'use-b-2', { idempotencyKey: 'b-2', reason: 'model error', restoreExpired: true });
      expect(refunded.body).toMatchObject({ amount: '2', forfeited: [], reissued: { bucketId: 'refund:b-2', amount: '2' }, restoreExpired: true });
      const balance = await waitForBalance(B, '12');
      expect(balance.byKind).toEqual({ allowance: '10', promotional: '2', purchased: '0' });
      await historyWith(B, 'UsageRefunded', 2);
      await expectHistoryAddsUp(B);
    });

    it('voiding the reissued bucket links the void and the refund that created it to each other in the history', async () => {
      const voided = await voidGrant(B, 'refund:b-2', { idempotencyKey: 'v-b-2', reason: 'reissued by mistake' });
      expect(voided).toMatchObject({ status: 201, body: { grantId: 'refund:b-2', amount: '2' } });
      await waitForBalance(B, '10');
      const items = await historyWith(B, 'GrantVoided');
      const refundRow = items.find((item) => item.type === 'UsageRefunded' && item.details.refundId === 'refund:b-2');
      const voidRow = items.find((item) => item.type === 'GrantVoided');
      expect(voidRow?.details.corrects).toEqual({ type: 'UsageRefunded', refundId: 'refund:b-2', streamVersion: refundRow?.streamVersion });
      expect(refundRow?.details.corrections).toEqual([{ type: 'GrantVoided', streamVersion: voidRow?.streamVersion, amount: '2' }]);
      await expectHistoryAddsUp(B);
    });
  });

  describe('voiding a grant or a purchase', () => {
    const C = 'acct-void';

    beforeAll(async () => {
      expect((await api.post(`/v1/accounts/${C}/grants`, { reason: 'test grant', idempotencyKey: 'welcome', amount: '10' })).status).toBe(201);
      await useCredits(C, 'use-c-1', 3);
      await waitForBalance(C, '7');
      await api.post(`/v1/accounts/${C}/purchases`, { paymentReference: 'pay-c-1', amount: '5' });
      await waitForBalance(C, '12');
    });

    it('removes what is left of a partly spent grant; what was spent stays spent', async () => {
      const voided = await voidGrant(C, 'grant:welcome', { idempotencyKey: 'v-1', reason: 'granted to the wrong account' });
      expect(voided.status).toBe(201);
      expect(voided.body).toMatchObject({ grantId: 'grant:welcome', voidId: 'void:v-1', kind: 'promotional', amount: '7', duplicate: false });
      expect(voided.body.balance).toMatchObject({ available: '5', overdraft: '0', byKind: { allowance: '0', promotional: '0', purchased: '5' } });
      await waitForBalance(C, '5');
      const items = await historyWith(C, 'GrantVoided');
      const grant = items.find((item) => item.type === 'CreditsGranted' && item.details.grantId === 'grant:welcome');
      const row = items.find((item) => item.type === 'GrantVoided');
      expect(row).toMatchObject({ amount: '-7', actor: 'test', details: { corrects: { type: 'CreditsGranted', grantId: 'grant:welcome', streamVersion: grant?.streamVersion }, reason: 'granted to the wrong account' } });
      expect(grant?.details.corrections).toEqual([{ type: 'GrantVoided', streamVersion: row?.streamVersion, amount: '7' }]);
      await expectHistoryAddsUp(C);
      // The usage it paid for is still spent.
      expect((await api.get(`/v1/accounts/${C}/usage?period=30d`)).body.totals).toEqual({ credits: '3', requests: 1 });
    });

    it('voids a purchase by its grant id; replays are idempotent; a second void, an unknown grant and an allowance are refused', async () => {
      expect((await voidGrant(C, 'purchase:pay-c-1', { idempotencyKey: 'v-2', reason: 'chargeback' })).body).toMatchObject({ kind: 'purchased', amount: '5' });
      const replay = await voidGrant(C, 'purchase:pay-c-1', { idempotencyKey: 'v-2', reason: 'chargeback' });
      expect(replay).toMatchObject({ status: 200, body: { amount: '5', duplicate: true } });
      const conflict = await voidGrant(C, 'purchase:pay-c-1', { idempotencyKey: 'v-2', reason: 'other' });
      expect(conflict.body).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', details: { key: 'void:void:v-2' } });
      expect(JSON.stringify(conflict.body)).not.toMatch(/chargeback|other/); // names the key, quotes neither request's content
      expect(await voidGrant(C, 'purchase:pay-c-1', { idempotencyKey: 'v-3', reason: 'again' })).toMatchObject({ status: 409, body: { code: 'ALREADY_VOIDED' } });
      expect(await voidGrant(C, 'grant:nope', { idempotencyKey: 'v-4', reason: 'r' })).toMatchObject({ status: 404, body: { code: 'GRANT_NOT_FOUND' } });
      expect((await voidGrant(C, 'grant:welcome', { idempotencyKey: 'v-5' })).status).toBe(400);
      await startCycle(C, 'cycle-c-0', Date.now(), '10');
      await waitForBalance(C, '10');
      expect(await voidGrant(C, 'allowance:cycle-c-0', { idempotencyKey: 'v-6', reason: 'r' })).toMatchObject({ status: 409, body: { code: 'GRANT_NOT_VOIDABLE' } });
      await historyWith(C, 'GrantVoided', 2);
      await expectHistoryAddsUp(C);
    });

    it('voids a grant whose idempotency key is as long as keys may be (its grant id is then 134 characters)', async () => {
      const key = 'k'.repeat(128);
      expect((await api.post(`/v1/accounts/${C}/grants`, { reason: 'test grant', idempotencyKey: key, amount: '1' })).status).toBe(201);
      const voided = await voidGrant(C, `grant:${key}`, { idempotencyKey: 'v-long', reason: 'granted twice' });
      expect(voided).toMatchObject({ status: 201, body: { grantId: `grant:${key}`, amount: '1' } });
      expect((await voidGrant(C, `grant:${key}x`, { idempotencyKey: 'v-longer', reason: 'r' })).status).toBe(400);
    });
  });

  it('the typed client (@tally/client) refunds and voids, and throws the coded refusals', async () => {
    const D = 'acct-client';
    const client = new TallyClient({ apiKey: API_KEY, urls: { usageIngest: base, ledger: base } });
    await api.post(`/v1/accounts/${D}/purchases`, { paymentReference: 'pay-d-1', amount: '10' });
    await useCredits(D, 'use-d-1', 4);
    await waitForBalance(D, '6');
    expect(await client.refundUsage(D, 'use-d-1', { idempotencyKey: 'd-1', amount: '1', reason: 'support' })).toMatchObject({ amount: '1', refundable: '3', duplicate: false });
    await expect(client.refundUsage(D, 'use-d-1', { idempotencyKey: 'd-2', amount: '4', reason: 'support' })).rejects.toMatchObject({
      status: 409, code: 'REFUND_EXCEEDS_DEBIT', details: expect.objectContaining({ refundable: '3' }),
    });
    expect(await client.voidGrant(D, 'purchase:pay-d-1', { idempotencyKey: 'd-3', reason: 'chargeback' })).toMatchObject({ amount: '7', balance: { available: '0' } });
    await expect(client.voidGrant(D, 'purchase:nope', { idempotencyKey: 'd-4', reason: 'r' })).rejects.toMatchObject({ status: 404, code: 'GRANT_NOT_FOUND' });
  });
});

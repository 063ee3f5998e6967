import type { INestApplication } from '@nestjs/common';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { TallyClient } from '@tally/client';
import { ManualClock } from '@tally/shared';
import { testKafkaBrokers, waitFor } from '@tally/testing';
import { API_KEY, createTestSchema, createTopics, json, ledgerTestSettings, startLedger, storedVersion, waitForAvailable } from './ledger.harness';

/**
 * Between the end of an account's cycle and the ledger's next CycleStarted (subscription-cycle's wake-up, its outbox
 * and the consumer: a fraction of a second; an outage of them longer) the allowance has expired and the renewal is
 * not known yet. An authorization the account cannot cover then is not "Insufficient Credits" (which tells a
 * subscriber with a paid plan to buy a pack): it is 503 CYCLE_RENEWAL_PENDING with Retry-After, which the client
 * retries. Real HTTP, PostgreSQL and Kafka; a manual clock moves the account past its cycle's end.
 */
describe('authorizations between the end of a cycle and its renewal', () => {
  const { env, topics } = ledgerTestSettings();
  const clock = new ManualClock(new Date('2026-06-15T10:00:00.000Z'));
  const DAY = 86_400_000;
  const firstEnd = new Date(clock.now().getTime() + 60_000).toISOString();
  let app: INestApplication;
  let base: string;
  let api: ReturnType<typeof json>;
  let producer: Producer;
  let drop: () => Promise<void>;

  const cycle = (accountId: string, cycleId: string, periodStart: string, periodEnd: string) => ({
    key: accountId,
    value: JSON.stringify({
      id: `${accountId}-${cycleId}`, type: 'CycleStarted', version: 1, accountId, occurredAt: periodStart,
      data: { cycleId, planId: 'starter', periodStart, periodEnd, allocation: '10', unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry' },
    }),
  });
  const renew = (accountId: string) =>
    producer.send({ topic: env.SUBSCRIPTION_EVENTS_TOPIC, messages: [cycle(accountId, 'c2', firstEnd, new Date(Date.parse(firstEnd) + 30 * DAY).toISOString())] });
  const authorize = async (accountId: string, body: object) => {
    const response = await fetch(`${base}/v1/accounts/${accountId}/authorizations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as Record<string, any> };
  };

  beforeAll(async () => {
    let schema: string;
    ({ schema, drop } = await createTestSchema('ledger_renewal_gap'));
    await createTopics(topics);
    ({ app, base } = await startLedger({ ...env, LOG_LEVEL: 'silent' }, schema, clock));
    api = json(base);
    producer = new Kafka({ clientId: 'e2e-renewal-gap', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const start = new Date(clock.now().getTime() - 30 * DAY + 60_000).toISOString();
    await producer.send({
      topic: env.SUBSCRIPTION_EVENTS_TOPIC,
      messages: ['acct-gap', 'acct-gap-pack', 'acct-gap-client', 'acct-gap-usage'].map((accountId) => cycle(accountId, 'c1', start, firstEnd)),
    });
    expect((await api.post('/v1/accounts/acct-gap-pack/purchases', { paymentReference: 'pi-gap-pack', amount: '3' })).status).toBe(201);
    expect((await api.post('/v1/accounts/acct-gap-usage/purchases', { paymentReference: 'pi-gap-usage', amount: '5' })).status).toBe(201);
    await waitForAvailable(api, 'acct-gap-usage', '15');
    await waitForAvailable(api, 'acct-gap', '10');
    await waitForAvailable(api, 'acct-gap-client', '10');
    await waitForAvailable(api, 'acct-gap-pack', '13');
    clock.advance(61_000); // the cycles have ended; no renewal has come
  });

  afterAll(async () => {
    await producer?.disconnect();
    await app?.close();
    await drop?.();
  });

  it('answers 503 CYCLE_RENEWAL_PENDING with Retry-After, with a hold or without, and places nothing', async () => {
    const before = await storedVersion(api, 'acct-gap', new Date());
    for (const body of [{ amount: '5' }, { amount: '5', hold: { holdId: 'gap-hold', ttlSeconds: 600 } }]) {
      const answer = await authorize('acct-gap', body);
      expect(answer).toMatchObject({ status: 503, body: { code: 'CYCLE_RENEWAL_PENDING', details: { cycleId: 'c1', cycleEnd: firstEnd } } });
      expect(Number(answer.retryAfter)).toBeGreaterThan(0);
    }
    // Nothing appended: the stream (not the projection, which would not show it yet) is where it was.
    expect(await storedVersion(api, 'acct-gap', new Date())).toBe(before);
  });

  it('still places a hold the purchased credits cover, and waits for the renewal only for what they cannot', async () => {
    expect(await authorize('acct-gap-pack', { amount: '2', hold: { holdId: 'small', ttlSeconds: 600 } })).toMatchObject({ status: 200, body: { allowed: true, available: '1' } });
    expect(await authorize('acct-gap-pack', { amount: '5', hold: { holdId: 'large', ttlSeconds: 600 } })).toMatchObject({ status: 503, body: { code: 'CYCLE_RENEWAL_PENDING' } });
  });

  it('defers usage in the gap to the next allowance; what that allowance cannot pay, the purchased credits pay at the renewal', async () => {
    // gpt-4o output: 10 credits per million tokens, so 1,200,000 tokens are 12 credits: more than the next allowance's 10.
    const usage = { id: 'gap-usage', type: 'UsageRecorded', version: 1, accountId: 'acct-gap-usage', occurredAt: clock.now().toISOString(), data: { feature: 'chat', model: 'gpt-4o', inputTokens: 0, outputTokens: 1_200_000 } };
    await producer.send({ topic: env.USAGE_EVENTS_TOPIC, messages: [{ key: 'acct-gap-usage', value: JSON.stringify(usage) }] });
    const deferred = await waitFor(async () => {
      const { body } = await api.get('/v1/accounts/acct-gap-usage/balance');
      return body.overdraft === '12' ? body : undefined;
    });
    expect(deferred).toMatchObject({ available: '5', overdraft: '12' }); // the purchased credits untouched in the gap

    await renew('acct-gap-usage');

    const renewed = await waitFor(async () => {
      const { body } = await api.get('/v1/accounts/acct-gap-usage/balance');
      return body.cycleId === 'c2' ? body : undefined;
    });
    // As if the usage had come after the renewal: the allowance's 10, then 2 of the 5 purchased; and the new cycle
    // shows the 12 credits as used (its allowance is gone: a credits page reads "12 of 10 used", not "0 of 10").
    expect(renewed).toMatchObject({ available: '3', byKind: { allowance: '0', purchased: '3' }, overdraft: '0', usedThisCycle: '12' });
  });

  it('authorizes once the renewal is applied: a client retrying the 503 gets its hold without showing "Insufficient Credits"', async () => {
    const tally = new TallyClient({ apiKey: API_KEY, urls: { usageIngest: base, ledger: base }, retry: { attempts: 10, baseDelayMs: 100, maxDelayMs: 500 } });
    expect((await authorize('acct-gap-client', { amount: '5' })).status).toBe(503); // the client's first attempt meets the gap too
    const placing = tally.placeHold('acct-gap-client', { amount: '5' }, { holdId: 'client-hold', ttlSeconds: 600 });
    await renew('acct-gap-client');
    const placed = await placing;
    expect(placed).toMatchObject({ ok: true, hold: { holdId: 'client-hold', amount: '5' } });

    await renew('acct-gap');
    // The read model shows the applied renewal (its balance alone would not tell: it still showed the ended allowance).
    await waitFor(async () => ((await api.get('/v1/accounts/acct-gap/transactions?type=CycleStarted')).body.items.length === 2 ? true : undefined));
    expect(await authorize('acct-gap', { amount: '5', hold: { holdId: 'gap-hold', ttlSeconds: 600 } })).toMatchObject({ status: 200, body: { allowed: true, available: '5' } });
  });
});

import type { INestApplication } from '@nestjs/common';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { AdvancingClock } from '@tally/shared';
import { testKafkaBrokers, waitFor } from '@tally/testing';
import { API_KEY, createTestSchema, createTopics, cycleStartedMessage, json, ledgerTestSettings, startLedger, storedVersion, textReader } from './ledger.harness';

/** Issue 6 on the real broker and database: refusals, holds for streaming answers, balance history and live stream. */
describe('authorizations, holds and the live balance', () => {
  const { env, topics } = ledgerTestSettings();
  const clock = new AdvancingClock();
  let app: INestApplication;
  let base: string;
  let api: ReturnType<typeof json>;
  let producer: Producer;
  let drop: () => Promise<void>;

  const usage = (id: string, accountId: string, outputTokens: number, holdId?: string) => ({
    key: accountId,
    value: JSON.stringify({
      id, type: 'UsageRecorded', version: 1, accountId, occurredAt: new Date().toISOString(),
      // gpt-4o output: 10 credits per million tokens → 100,000 tokens = 1 credit
      data: { feature: 'chat', model: 'gpt-4o', inputTokens: 0, outputTokens, ...(holdId ? { holdId } : {}) },
    }),
  });
  const authorize = (accountId: string, body: object) => api.post(`/v1/accounts/${accountId}/authorizations`, body);
  const waitForBalance = (accountId: string, available: string) =>
    waitFor(async () => {
      const { status, body } = await api.get(`/v1/accounts/${accountId}/balance`);
      return status === 200 && body.available === available ? body : undefined;
    }, 20_000);

  beforeAll(async () => {
    const created = await createTestSchema('ledger_auth');
    drop = created.drop;
    await createTopics(topics);
    ({ app, base } = await startLedger(env, created.schema, clock));
    api = json(base);
    producer = new Kafka({ clientId: 'auth-e2e', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
  });

  afterAll(async () => {
    await producer?.disconnect();
    await app?.close();
    await drop?.();
  });

  it('refuses 2 credits to an account holding 1 with 402 and the exact amounts', async () => {
    await api.post('/v1/accounts/acct-one/grants', { reason: 'test grant', idempotencyKey: 'one', amount: '1' });
    const refused = await authorize('acct-one', { amount: '2' });
    expect(refused.status).toBe(402);
    expect(refused.body).toMatchObject({ code: 'INSUFFICIENT_CREDITS', required: '2', available: '1', message: 'Insufficient Credits' });
    expect(refused.body.hint).toMatch(/buy|upgrade/i);
    const allowed = await authorize('acct-one', { amount: '0.5' });
    expect(allowed).toMatchObject({ status: 200, body: { allowed: true, required: '0.5', available: '1' } });
  });

  it('prices a usage estimate with the rate card', async () => {
    // 200,000 output tokens of gpt-4o = 2 credits > 1 available
    const refused = await authorize('acct-one', { usage: { feature: 'chat', model: 'gpt-4o', inputTokens: 0, outputTokens: 200_000 } });
    expect(refused.body).toMatchObject({ code: 'INSUFFICIENT_CREDITS', required: '2', available: '1' });
    const unknown = await authorize('acct-one', { usage: { feature: 'chat', model: 'gpt-9-imaginary', inputTokens: 1, outputTokens: 1 } });
    expect(unknown).toMatchObject({ status: 400, body: { code: 'UNPRICEABLE_USAGE', details: { field: 'usage.model' } } });
    expect(JSON.stringify(unknown.body)).not.toContain('gpt-9-imaginary'); // the refusal names the field, quotes no input
  });

  it('answers 404 for an account never seen, with or without a hold, and 400 for a malformed id or body', async () => {
    expect(await authorize('acct-never', { amount: '1' })).toMatchObject({ status: 404, body: { code: 'ACCOUNT_NOT_FOUND' } });
    // A hold there is the same question: no account, not an account of zero credits (it was 402 INSUFFICIENT_CREDITS).
    expect(await authorize('acct-never', { amount: '1', hold: { holdId: 'hold-never', ttlSeconds: 60 } })).toMatchObject({ status: 404, body: { code: 'ACCOUNT_NOT_FOUND' } });
    expect((await api.get('/v1/accounts/acct-never/balance')).status).toBe(404);
    expect((await authorize('bad id!', { amount: '1' })).status).toBe(400);
    const invalid = await authorize('acct-one', { amount: 2 });
    expect(invalid.status).toBe(400);
    expect(invalid.body.details).toEqual([expect.objectContaining({ field: 'amount' })]);
  });

  it('a hold on an unlimited plan says so: nothing is reserved and no hold is kept', async () => {
    await producer.send({
      topic: env.SUBSCRIPTION_EVENTS_TOPIC,
      messages: [cycleStartedMessage('acct-unlimited', 'acct-unlimited-c1', { planId: 'custom', allocation: '0', unlimited: true, thresholds: [], overdraftPolicy: 'write-off' })],
    });
    await waitFor(async () => (await api.get('/v1/accounts/acct-unlimited/balance')).status === 200, 20_000);

    const before = await storedVersion(api, 'acct-unlimited', clock.now());
    const held = await authorize('acct-unlimited', { amount: '5', hold: { holdId: 'unlimited-1', ttlSeconds: 600 } });

    // A client that counts on the hold (releases it, or reads it back) learns here that there is none to count on.
    expect(held).toMatchObject({ status: 200, body: { allowed: true, required: '5', unlimited: true, hold: { holdId: 'unlimited-1', amount: '5' } } });
    // Nothing appended: the stream (not the projection, which would not show it yet) is where it was.
    expect(await storedVersion(api, 'acct-unlimited', clock.now())).toBe(before);
  });

  // An estimate of no tokens (or of a model priced 0) costs nothing: there is nothing to reserve. It was refused 400
  // INVALID_AMOUNT naming `amount`, a field the caller never sent, also on an unlimited plan and for no account at all.
  it('a hold for a usage estimate that prices to 0 reserves nothing and is allowed; 404 for no account', async () => {
    const free = { feature: 'chat', model: 'gpt-4o', inputTokens: 0, outputTokens: 0 };
    for (const accountId of ['acct-one', 'acct-unlimited']) {
      const before = await storedVersion(api, accountId, clock.now());
      const held = await authorize(accountId, { usage: free, hold: { holdId: `free-${accountId}`, ttlSeconds: 600 } });
      expect(held).toMatchObject({ status: 200, body: { allowed: true, required: '0', hold: { holdId: `free-${accountId}`, amount: '0' } } });
      expect({ accountId, version: await storedVersion(api, accountId, clock.now()) }).toEqual({ accountId, version: before });
    }
    expect(await authorize('acct-never', { usage: free, hold: { holdId: 'free-never', ttlSeconds: 60 } })).toMatchObject({ status: 404, body: { code: 'ACCOUNT_NOT_FOUND' } });
  });

  it('a hold of 5 leaves others the rest; settling for 3 releases 2; settling twice has no second effect', async () => {
    await api.post('/v1/accounts/acct-hold/grants', { reason: 'test grant', idempotencyKey: 'h', amount: '10' });
    const held = await authorize('acct-hold', { amount: '5', hold: { holdId: 'stream-1', ttlSeconds: 600 } });
    expect(held).toMatchObject({ status: 200, body: { allowed: true, available: '5', hold: { holdId: 'stream-1', amount: '5' } } });
    expect((await authorize('acct-hold', { amount: '6' })).body).toMatchObject({ code: 'INSUFFICIENT_CREDITS', available: '5' });

    await producer.send({ topic: env.USAGE_EVENTS_TOPIC, messages: [usage('streamed-answer', 'acct-hold', 300_000, 'stream-1')] });
    const settled = await waitForBalance('acct-hold', '7');
    expect(settled).toMatchObject({ held: '0', usedThisCycle: '3' });

    // The same hold named again by another usage settles nothing: that usage is simply debited.
    await producer.send({ topic: env.USAGE_EVENTS_TOPIC, messages: [usage('second-use', 'acct-hold', 100_000, 'stream-1')] });
    await waitForBalance('acct-hold', '6');
    const transactions = await api.get('/v1/accounts/acct-hold/transactions?type=HoldSettled');
    expect(transactions.body.items).toHaveLength(1);
    expect(transactions.body.items[0].details).toMatchObject({ heldAmount: '5', settledAmount: '3', releasedAmount: '2' });
  });

  it('an expired hold releases all of it', async () => {
    await api.post('/v1/accounts/acct-expire/grants', { reason: 'test grant', idempotencyKey: 'e', amount: '4' });
    await authorize('acct-expire', { amount: '4', hold: { holdId: 'short', ttlSeconds: 1 } });
    expect((await authorize('acct-expire', { amount: '1' })).status).toBe(402);
    clock.advance(1_200); // the ledger's clock moves past the TTL: no waiting on the wall clock
    expect(await authorize('acct-expire', { amount: '4' })).toMatchObject({ status: 200, body: { available: '4' } });
  });

  it('a released hold gives its credits back, once', async () => {
    await api.post('/v1/accounts/acct-release/grants', { reason: 'test grant', idempotencyKey: 'r', amount: '3' });
    await authorize('acct-release', { amount: '2', hold: { holdId: 'cancelled-stream' } });
    const release = async () => {
      const response = await fetch(`${base}/v1/accounts/acct-release/holds/cancelled-stream`, { method: 'DELETE', headers: { authorization: `Bearer ${API_KEY}` } });
      return response.json();
    };
    expect(await release()).toEqual({ holdId: 'cancelled-stream', released: '2', available: '3' });
    expect(await release()).toEqual({ holdId: 'cancelled-stream', released: '0', available: '3' });
  });

  // Usage that came while credits were reserved was carried as overdraft; the credits the hold gives back pay it at
  // once, or they would expire with the cycle while the next allowance paid the debt.
  it('a released hold pays the overdraft carried while it held the credits: the balance, the answer and the history agree', async () => {
    await api.post('/v1/accounts/acct-squeeze/grants', { reason: 'test grant', idempotencyKey: 's', amount: '10' });
    expect((await authorize('acct-squeeze', { amount: '8', hold: { holdId: 'long-answer' } })).body).toMatchObject({ allowed: true, available: '2' });
    await producer.send({ topic: env.USAGE_EVENTS_TOPIC, messages: [usage('meanwhile', 'acct-squeeze', 500_000)] }); // 5 credits, 2 free
    await waitFor(async () => (await api.get('/v1/accounts/acct-squeeze/balance')).body.overdraft === '3', 20_000);

    const response = await fetch(`${base}/v1/accounts/acct-squeeze/holds/long-answer`, { method: 'DELETE', headers: { authorization: `Bearer ${API_KEY}` } });
    expect(await response.json()).toEqual({ holdId: 'long-answer', released: '8', available: '5' });
    const balance = await waitForBalance('acct-squeeze', '5');
    expect(balance).toMatchObject({ overdraft: '0', held: '0', byKind: { promotional: '5' } });
    const { body } = await api.get('/v1/accounts/acct-squeeze/transactions');
    const rows = (body.items as { type: string; amount: string | null; balanceAfter: string; details: Record<string, unknown> }[]).slice().reverse();
    expect(rows.map((row) => [row.type, row.amount, row.balanceAfter])).toEqual([
      ['CreditsGranted', '10', '10'],
      ['HoldPlaced', '-8', '2'],
      ['UsageDebited', '-5', '-3'],
      ['OverdraftIncurred', null, '-3'],
      ['HoldReleased', '8', '5'],
      ['OverdraftSettled', null, '5'],
    ]);
    expect(rows[5].details).toMatchObject({ fromBucket: true, settled: '3', remainingOverdraft: '0' });
  });

  it('the balance at a past instant equals what the balance endpoint said then', async () => {
    await api.post('/v1/accounts/acct-time/grants', { reason: 'test grant', idempotencyKey: 't1', amount: '20' });
    const then = await waitForBalance('acct-time', '20');
    const instant = new Date().toISOString();
    await producer.send({ topic: env.USAGE_EVENTS_TOPIC, messages: [usage('later', 'acct-time', 500_000)] });
    await waitForBalance('acct-time', '15');
    const past = await api.get(`/v1/accounts/acct-time/balance?at=${encodeURIComponent(instant)}`);
    expect(past.status).toBe(200);
    const { asOf: _asOf, ...pastFigures } = past.body;
    expect(pastFigures).toEqual(then);
    expect((await api.get('/v1/accounts/acct-time/balance?at=not-a-date')).status).toBe(400);
  });

  it('a purchase that pays off an overdraft reaches the balance and the history, and the history adds up', async () => {
    await api.post('/v1/accounts/acct-owe/grants', { reason: 'test grant', idempotencyKey: 'o', amount: '1' });
    await waitForBalance('acct-owe', '1');
    await producer.send({ topic: env.USAGE_EVENTS_TOPIC, messages: [usage('over', 'acct-owe', 125_000)] }); // 1.25 credits
    await waitFor(async () => (await api.get('/v1/accounts/acct-owe/balance')).body.overdraft === '0.25', 20_000);
    expect((await api.post('/v1/accounts/acct-owe/purchases', { paymentReference: 'pay-owe', amount: '10' })).status).toBe(201);

    const balance = await waitForBalance('acct-owe', '9.75');
    expect(balance).toMatchObject({ overdraft: '0', byKind: { purchased: '9.75' } });
    const { body } = await api.get('/v1/accounts/acct-owe/transactions');
    const rows = (body.items as { type: string; amount: string | null; balanceAfter: string; details: Record<string, unknown> }[]).slice().reverse();
    expect(rows.map((row) => [row.type, row.amount, row.balanceAfter])).toEqual([
      ['CreditsGranted', '1', '1'],
      ['UsageDebited', '-1.25', '-0.25'],
      ['OverdraftIncurred', null, '-0.25'],
      ['OverdraftSettled', null, '-0.25'],
      ['CreditsGranted', '10', '9.75'],
    ]);
    expect(rows[4].details).toMatchObject({ kind: 'purchased', paymentReference: 'pay-owe', overdraftSettled: '0.25' });
    const micros = rows.reduce((sum, row) => sum + (row.amount === null ? 0n : BigInt(Math.round(Number(row.amount) * 1e6))), 0n);
    expect(micros).toBe(9_750_000n);
  });

  it('streams the new balance over server-sent events after a usage event', async () => {
    await api.post('/v1/accounts/acct-live/grants', { reason: 'test grant', idempotencyKey: 'l', amount: '10' });
    await waitForBalance('acct-live', '10');
    const controller = new AbortController();
    const response = await fetch(`${base}/v1/accounts/acct-live/balance/stream`, { headers: { authorization: `Bearer ${API_KEY}` }, signal: controller.signal });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const { readUntil } = textReader(response.body as ReadableStream<Uint8Array>);
    await readUntil('"available":"10"');
    await producer.send({ topic: env.USAGE_EVENTS_TOPIC, messages: [usage('live-1', 'acct-live', 100_000)] });
    await readUntil('"available":"9"');
    controller.abort();
  });
});

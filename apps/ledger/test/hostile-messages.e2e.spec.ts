import type { Producer } from 'kafkajs';
import { waitFor } from '@tally/testing';
import { collect, json, ledgerTestSettings, startLedgerWithIngest, waitForAvailable } from './ledger.harness';

/**
 * Messages produced straight to Kafka that the ledger cannot take as they are must not stop their partition: they
 * are applied without what cannot be stored, or dead-lettered with a reason the dead-letter topic can hold. One
 * partition per topic, so a stuck message would hold every later balance; each case is followed by a good usage.
 */
describe('hostile messages on the usage topic (real broker and database)', () => {
  const { env, topics } = ledgerTestSettings();
  let api: ReturnType<typeof json>;
  let producer: Producer;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ api, producer, stop } = await startLedgerWithIngest('hostile', env, topics));
  });

  afterAll(async () => {
    await stop?.();
  });

  const usage = (id: string, accountId: string, extra: object = {}) =>
    JSON.stringify({ id, type: 'UsageRecorded', version: 1, accountId, occurredAt: new Date().toISOString(), data: { feature: 'image', model: 'dall-e-3', images: 1, resolution: '1024x1024' }, ...extra });

  it('a usage whose trace headers PostgreSQL cannot store (a NUL byte) is applied without them, and the next one too', async () => {
    await api.post('/v1/accounts/acct-nul-trace/grants', { reason: 'test grant', idempotencyKey: 'funds', amount: '10' });
    await waitForAvailable(api, 'acct-nul-trace', '10');
    await producer.send({
      topic: env.USAGE_EVENTS_TOPIC,
      messages: [
        { key: 'acct-nul-trace', value: usage('nul-trace', 'acct-nul-trace'), headers: { traceparent: '00-\u0000bc-1', tracestate: 'k=\u0000' } },
        { key: 'acct-nul-trace', value: usage('after-nul-trace', 'acct-nul-trace') },
      ],
    });
    const balance = await waitForAvailable(api, 'acct-nul-trace', '9.92'); // two images of 0.04
    expect(balance.usedThisCycle).toBe('0.08');
  });

  // usage-ingest refuses an occurredAt more than MAX_FUTURE_SKEW_SECONDS (300) ahead; a service producing straight to
  // Kafka gets the same bound, measured by the ledger against the earlier of its clock and the record's timestamp
  // (USAGE_MAX_FUTURE_SKEW_SECONDS, 600: looser, so host clocks a little apart never refuse what usage-ingest took).
  it('a usage dated an hour ahead is dead-lettered (OCCURRED_IN_FUTURE), not priced by a rate card not in effect yet; five minutes ahead is applied', async () => {
    const dlq = await collect(env.USAGE_DLQ_TOPIC);
    try {
      await api.post('/v1/accounts/acct-future/grants', { reason: 'test grant', idempotencyKey: 'funds', amount: '10' });
      await waitForAvailable(api, 'acct-future', '10');
      const ahead = (ms: number) => new Date(Date.now() + ms).toISOString();
      await producer.send({
        topic: env.USAGE_EVENTS_TOPIC,
        messages: [
          { key: 'acct-future', value: usage('hour-ahead', 'acct-future', { occurredAt: ahead(3_600_000) }) },
          { key: 'acct-future', value: usage('minutes-ahead', 'acct-future', { occurredAt: ahead(300_000) }) },
        ],
      });
      await waitForAvailable(api, 'acct-future', '9.96'); // one image of 0.04: the one five minutes ahead
      const dead = await waitFor(() => dlq.messages.find((message) => message.value.includes('"hour-ahead"')));
      expect(dead.headers['x-dead-letter-reason']).toBe('OCCURRED_IN_FUTURE');
      expect(JSON.parse(dead.headers['x-dead-letter-details'])).toMatchObject({ field: 'occurredAt', maxFutureSkewSeconds: 600 });
    } finally {
      await dlq.stop();
    }
  });

  it('an envelope whose refusal lists more issues than a Kafka message can carry is dead-lettered with its details cut, and the next one applied', async () => {
    const dlq = await collect(env.USAGE_DLQ_TOPIC);
    try {
      await api.post('/v1/accounts/acct-many-issues/grants', { reason: 'test grant', idempotencyKey: 'funds', amount: '10' });
      await waitForAvailable(api, 'acct-many-issues', '10');
      // ~300 KB of unknown properties: one issue each, several times the message's size in all.
      const unknown = Object.fromEntries(Array.from({ length: 30_000 }, (_, index) => [`a${index}`, 0]));
      await producer.send({
        topic: env.USAGE_EVENTS_TOPIC,
        messages: [
          { key: 'acct-many-issues', value: usage('many-issues', 'acct-many-issues', unknown) },
          { key: 'acct-many-issues', value: usage('after-many-issues', 'acct-many-issues') },
        ],
      });
      await waitForAvailable(api, 'acct-many-issues', '9.96');
      const dead = await waitFor(() => dlq.messages.find((message) => message.value.includes('"many-issues"')));
      expect(dead.headers['x-dead-letter-reason']).toBe('INVALID_ENVELOPE');
      const details = JSON.parse(dead.headers['x-dead-letter-details']);
      expect(details).toMatchObject({ truncated: true, length: expect.any(Number), head: expect.any(String) });
      expect(details.length).toBeGreaterThan(300_000);
    } finally {
      await dlq.stop();
    }
  });

  it('a renewal whose period PostgreSQL cannot read (an offset beyond ±15:59) is dead-lettered, and the next renewal applied', async () => {
    const dlq = await collect(env.SUBSCRIPTION_DLQ_TOPIC);
    try {
      const cycle = (accountId: string, periodEnd: string) => ({
        key: accountId,
        value: JSON.stringify({
          id: `cycle-${accountId}`, type: 'CycleStarted', version: 1, accountId, occurredAt: new Date().toISOString(),
          data: { cycleId: `cycle-${accountId}`, planId: 'starter', periodStart: '2026-11-01T00:00:00Z', periodEnd, allocation: '10', unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry' },
        }),
      });
      await producer.send({
        topic: env.SUBSCRIPTION_EVENTS_TOPIC,
        messages: [cycle('acct-far-offset', '2036-12-01T00:00:00+16:00'), cycle('acct-after-far-offset', '2036-12-01T00:00:00Z')],
      });
      await waitForAvailable(api, 'acct-after-far-offset', '10');
      const dead = await waitFor(() => dlq.messages.find((message) => message.value.includes('cycle-acct-far-offset')));
      expect(dead.headers['x-dead-letter-details']).toContain('periodEnd');
    } finally {
      await dlq.stop();
    }
  });
});

import type { Producer } from 'kafkajs';
import { waitFor, type ServiceProcess } from '@tally/testing';
import { API_KEY, collect, json, ledgerTestSettings, reportUsage, startLedgerWithIngest, storedBalance, waitForAvailable } from './ledger.harness';

/**
 * Instants at every edge (libs/instant). ISO 8601 has shapes class-validator's `isISO8601` takes that JavaScript's
 * Date or PostgreSQL read differently or not at all: a grant's expiry JavaScript could not read was a 500, and a
 * usage dated by its month alone was priced, appended, and then refused by the projection's cast for ever. Every
 * topic has ONE partition here: a usage the projection cannot store would hold every later balance.
 */
const NOT_INSTANTS = [
  '2026-11', // a month: PostgreSQL refuses it, Date reads 1 November
  '2026-325', // a day of the year
  '2026-W48-1', // a week day
  '2026-12-31T10Z', // an hour without its minutes
  '2026-12-31T10:00:00,5Z', // a comma fraction
  '+2026-12-31T00:00:00Z', // an expanded year
  '2026-12-31T10:00:00', // no offset: the reading process's zone, or the database session's
  '2026-02-29T10:00:00Z', // a day 2026 does not have
  '2026-12-31T10:00:00+16:00', // an offset PostgreSQL refuses
];

describe('instants on the real HTTP API, broker and database', () => {
  const { env, topics } = ledgerTestSettings();
  let api: ReturnType<typeof json>;
  let base: string;
  let producer: Producer;
  let ingest: ServiceProcess;
  let stop: () => Promise<void>;

  const waitForBalance = (accountId: string, available: string) => waitForAvailable(api, accountId, available);
  const report = (body: object) => reportUsage(ingest.base, body);

  beforeAll(async () => {
    ({ api, base, producer, ingest, stop } = await startLedgerWithIngest('instants', env, topics));
  });

  afterAll(async () => {
    await stop?.();
  });

  it('refuses a grant whose expiresAt is not an instant with 400 VALIDATION_FAILED naming the field, and stores nothing', async () => {
    for (const [index, expiresAt] of NOT_INSTANTS.entries()) {
      const grant = await api.post('/v1/accounts/acct-expiry/grants', { reason: 'test grant', idempotencyKey: `expiry-${index}`, amount: '5', expiresAt });
      expect({ expiresAt, status: grant.status, body: grant.body }).toMatchObject({
        expiresAt,
        status: 400,
        body: { code: 'VALIDATION_FAILED', details: [{ field: 'expiresAt', reason: expect.stringContaining('instant with an offset') }] },
      });
    }
    expect(await storedBalance(api, 'acct-expiry')).toMatchObject({ status: 404, body: { code: 'ACCOUNT_NOT_FOUND' } });

    // An instant in another offset, with more fraction digits than a Date keeps, is taken.
    const taken = await api.post('/v1/accounts/acct-expiry/grants', { reason: 'test grant', idempotencyKey: 'expiry-offset', amount: '5', expiresAt: '2099-12-31T23:30:00.1234567-01:00' });
    expect(taken.status).toBe(201);
    await waitForBalance('acct-expiry', '5');
  });

  it('usage-ingest refuses usage whose occurredAt is not an instant with 400 VALIDATION_FAILED naming the field, and produces nothing', async () => {
    await api.post('/v1/accounts/acct-ingest-at/grants', { reason: 'test grant', idempotencyKey: 'ingest-at', amount: '10' });
    await waitForBalance('acct-ingest-at', '10');
    // veo-3 at 0.75 credits a second on the 2026-06-01 card.
    const usage = { accountId: 'acct-ingest-at', feature: 'video', model: 'veo-3', videoSeconds: 4 };
    const june = '2026-06-15T00:00:00Z';
    for (const [index, occurredAt] of NOT_INSTANTS.entries()) {
      const refused = await report({ events: [{ ...usage, id: `fine-${index}`, occurredAt: june }, { ...usage, id: `month-${index}`, occurredAt }] });
      expect({ occurredAt, status: refused.status, body: refused.body }).toMatchObject({
        occurredAt,
        status: 400,
        body: { code: 'VALIDATION_FAILED', details: [{ field: 'events.1.occurredAt', reason: expect.stringContaining('instant with an offset') }] },
      });
    }
    // Each batch was refused whole: the next usage is the first this account is charged for.
    expect((await report({ ...usage, id: 'ingest-at-june', occurredAt: june })).status).toBe(202);
    await waitForBalance('acct-ingest-at', '7');
  });

  it('dead-letters usage produced straight to Kafka whose occurredAt is not an instant, and keeps applying the partition', async () => {
    const dlq = await collect(env.USAGE_DLQ_TOPIC);
    try {
      await api.post('/v1/accounts/acct-kafka-at/grants', { reason: 'test grant', idempotencyKey: 'kafka-at', amount: '10' });
      // veo-3 at 0.75 credits a second on the 2026-06-01 card.
      const envelope = (id: string, occurredAt: string) =>
        JSON.stringify({ id, type: 'UsageRecorded', version: 1, accountId: 'acct-kafka-at', occurredAt, data: { feature: 'video', model: 'veo-3', videoSeconds: 4 } });
      await producer.send({
        topic: env.USAGE_EVENTS_TOPIC,
        messages: [
          { key: 'acct-kafka-at', value: envelope('by-month', '2026-11') },
          { key: 'acct-kafka-at', value: envelope('by-instant', '2026-06-15T00:00:00Z') },
        ],
      });
      // The usage after it is charged and projected: the partition did not stop at the one it could not take.
      await waitForBalance('acct-kafka-at', '7');
      const dead = await waitFor(() => dlq.messages.find((m) => m.value.includes('by-month')));
      expect(dead.headers['x-dead-letter-reason']).toBe('INVALID_ENVELOPE');
      expect(dead.headers['x-dead-letter-details']).toContain('occurredAt');
    } finally {
      await dlq.stop();
    }
  });

  it('dates a usage where it was priced: an offset and a seventh fraction digit land on the instant Date reads, not a rounded one', async () => {
    await api.post('/v1/accounts/acct-late/grants', { reason: 'test grant', idempotencyKey: 'late', amount: '10' });
    // 23:59:59.9999999 UTC on 14 June: Date reads 23:59:59.999; PostgreSQL alone would round it into 15 June.
    await producer.send({
      topic: env.USAGE_EVENTS_TOPIC,
      messages: [{
        key: 'acct-late',
        value: JSON.stringify({ id: 'late-usage', type: 'UsageRecorded', version: 1, accountId: 'acct-late', occurredAt: '2026-06-15T01:59:59.9999999+02:00', data: { feature: 'video', model: 'veo-3', videoSeconds: 4 } }),
      }],
    });
    await waitForBalance('acct-late', '7');
    const exported = await fetch(`${base}/v1/accounts/acct-late/usage/export?from=2026-06-01T00:00:00Z&to=2026-07-01T00:00:00Z`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    expect(exported.status).toBe(200);
    const rows = (await exported.text()).trim().split('\n');
    expect(rows).toHaveLength(2);
    expect(rows[1].split(',')[0]).toBe('2026-06-14T23:59:59.999000Z');
  });
});

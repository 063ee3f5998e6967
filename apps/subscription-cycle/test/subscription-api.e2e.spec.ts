import { ManualClock } from '@tally/shared';
import { DataSource } from 'typeorm';
import { createTestSchema, uniqueSuffix } from '@tally/testing';
import { READER_KEY, http, startApp, testTopic, type TestApp } from './subscription-cycle.harness';

/** The HTTP contract: plans, scopes, and bad input refused with 400 {code, message, details} and nothing changed. */
describe('subscription-cycle: HTTP API', () => {
  const clock = new ManualClock(new Date('2031-03-10T08:00:00.000Z'));
  let dropSchema: () => Promise<void>;
  let service: TestApp;
  const id = `acct-api-${uniqueSuffix()}`;
  const path = `/v1/accounts/${id}/subscription`;

  beforeAll(async () => {
    const { schema, drop } = await createTestSchema('sc_api');
    dropSchema = drop;
    service = await startApp({ schema, topic: testTopic(), clock });
  });

  afterAll(async () => {
    await service?.app.close();
    await dropSchema?.();
  });

  const snapshot = async () => {
    const db = service.app.get(DataSource);
    return {
      subscriptions: await db.query(`SELECT * FROM "${service.config.DATABASE_SCHEMA}".subscriptions ORDER BY account_id`),
      outbox: await db.query(`SELECT message_id FROM "${service.config.DATABASE_SCHEMA}".outbox_messages ORDER BY id`),
      requests: await db.query(`SELECT account_id, idempotency_key, request, response FROM "${service.config.DATABASE_SCHEMA}".subscription_requests ORDER BY 1, 2`),
    };
  };

  it('lists plans and packs with amounts as decimal strings (accounts:read)', async () => {
    const response = await http(service.baseUrl, 'GET', '/v1/plans', undefined, READER_KEY);
    expect(response.status).toBe(200);
    const plans = response.body.plans as { id: string; creditsPerMonth: string; price: string }[];
    expect(plans.find((p) => p.id === 'pro')).toMatchObject({ creditsPerMonth: '2500', price: '19.99', interval: 'monthly' });
    expect(plans.find((p) => p.id === 'go')).toMatchObject({ creditsPerMonth: '7' });
    expect(response.body.packs).toEqual(expect.arrayContaining([{ id: 'pack-1000', credits: '1000', price: '10' }]));
    expect(response.body.fallbackPlanId).toBe('free');
  });

  it('requires a key with the right scope', async () => {
    expect((await http(service.baseUrl, 'GET', '/v1/plans', undefined, 'nope')).status).toBe(401);
    const forbidden = await http(service.baseUrl, 'PUT', path, { planId: 'pro', timeZone: 'UTC' }, READER_KEY);
    expect(forbidden).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
  });

  it('answers 404 for an account without a subscription', async () => {
    expect(await http(service.baseUrl, 'GET', path)).toMatchObject({ status: 404, body: { code: 'SUBSCRIPTION_NOT_FOUND' } });
    expect((await http(service.baseUrl, 'DELETE', path)).status).toBe(404);
  });

  it.each([
    ['an unknown plan', path, { planId: 'platinum', timeZone: 'UTC' }, 'UNKNOWN_PLAN', 'planId'],
    ['an invalid time zone', path, { planId: 'pro', timeZone: 'Mars/Olympus' }, 'INVALID_TIME_ZONE', 'timeZone'],
    ['an offset instead of a zone', path, { planId: 'pro', timeZone: '+02:00' }, 'INVALID_TIME_ZONE', 'timeZone'],
    ['a malformed account id', '/v1/accounts/bad%20id!/subscription', { planId: 'pro', timeZone: 'UTC' }, 'INVALID_ACCOUNT_ID', 'accountId'],
    ['an interval the plan is not billed at', path, { planId: 'pro', interval: 'yearly', timeZone: 'UTC' }, 'INTERVAL_MISMATCH', 'interval'],
    ['no time zone on a first subscription', path, { planId: 'pro' }, 'TIME_ZONE_REQUIRED', 'timeZone'],
    ['a missing plan id', path, { timeZone: 'UTC' }, 'VALIDATION_FAILED', 'planId'],
    ['an unknown field', path, { planId: 'pro', timeZone: 'UTC', credits: '1000000' }, 'VALIDATION_FAILED', 'credits'],
  ])('refuses %s with 400 and changes nothing', async (_case, target, body, code, field) => {
    const before = await snapshot();
    const response = await http(service.baseUrl, 'PUT', target, body);
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ code, message: expect.any(String), details: expect.arrayContaining([expect.objectContaining({ field, reason: expect.any(String) })]) });
    expect(await snapshot()).toEqual(before);
  });

  it('answers a PUT of the plan already held (a retry whose answer was lost) 200 unchanged, refuses a time zone change, changing nothing', async () => {
    expect((await http(service.baseUrl, 'PUT', path, { planId: 'pro', timeZone: 'Europe/Paris' })).status).toBe(200);
    const before = await snapshot();
    expect(before.outbox).toHaveLength(1);

    // PUT is idempotent: the same request again is not an error the billing integration must tell from a refusal.
    const same = await http(service.baseUrl, 'PUT', path, { planId: 'pro', timeZone: 'Europe/Paris' });
    expect(same).toMatchObject({ status: 200, body: { outcome: 'unchanged', planId: 'pro', pendingChange: null } });
    const zone = await http(service.baseUrl, 'PUT', path, { planId: 'starter', timeZone: 'UTC' });
    expect(zone).toMatchObject({ status: 400, body: { code: 'TIME_ZONE_IMMUTABLE' } });
    const unknown = await http(service.baseUrl, 'PUT', path, { planId: 'platinum' });
    expect(unknown).toMatchObject({ status: 400, body: { code: 'UNKNOWN_PLAN' } });
    expect(await snapshot()).toEqual(before);

    // Asking for the current plan while a change is pending undoes that change.
    expect((await http(service.baseUrl, 'DELETE', path)).body).toMatchObject({ outcome: 'cancel-scheduled' });
    const undo = await http(service.baseUrl, 'PUT', path, { planId: 'pro' });
    expect(undo.body).toMatchObject({ outcome: 'change-cancelled', pendingChange: null });
    const view = await http(service.baseUrl, 'GET', path, undefined, READER_KEY);
    expect(view).toMatchObject({ status: 200, body: { accountId: id, planId: 'pro', interval: 'monthly', timeZone: 'Europe/Paris', anchor: '2031-03-10T08:00:00.000Z', pendingChange: null } });
  });

  describe('an Idempotency-Key on PUT and DELETE', () => {
    const keyed = (key: string) => ({ 'idempotency-key': key });

    it('answers a retry with the first answer, and does not undo a change made since (a PUT whose answer was lost, retried after a cancel)', async () => {
      const account = `/v1/accounts/acct-idem-${uniqueSuffix()}/subscription`;
      const first = await http(service.baseUrl, 'PUT', account, { planId: 'pro', timeZone: 'UTC' }, undefined, keyed('sub-1'));
      expect(first).toMatchObject({ status: 200, body: { outcome: 'subscribed', planId: 'pro', pendingChange: null } });
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      const cancel = await http(service.baseUrl, 'DELETE', account, undefined, undefined, keyed('cancel-1'));
      expect(cancel.body).toMatchObject({ outcome: 'cancel-scheduled' });
      const before = await snapshot();

      // The integration never saw the PUT's answer and sends it again: the first answer, and nothing changes.
      const retried = await http(service.baseUrl, 'PUT', account, { planId: 'pro', timeZone: 'UTC' }, undefined, keyed('sub-1'));
      expect(retried).toMatchObject({ status: 200, body: first.body });
      expect(retried.headers['idempotent-replayed']).toBe('true');
      const cancelRetried = await http(service.baseUrl, 'DELETE', account, undefined, undefined, keyed('cancel-1'));
      expect(cancelRetried).toMatchObject({ status: 200, body: cancel.body });
      expect(await snapshot()).toEqual(before);
      expect((await http(service.baseUrl, 'GET', account, undefined, READER_KEY)).body).toMatchObject({ pendingChange: { kind: 'cancel' } });
    });

    it('refuses a key used with another request with 409 IDEMPOTENCY_CONFLICT, changing nothing; a key belongs to one account', async () => {
      const account = `/v1/accounts/acct-idem-${uniqueSuffix()}/subscription`;
      expect((await http(service.baseUrl, 'PUT', account, { planId: 'pro', timeZone: 'UTC' }, undefined, keyed('k'))).status).toBe(200);
      const before = await snapshot();
      for (const [method, body] of [['PUT', { planId: 'starter' }], ['DELETE', undefined]] as const) {
        const conflict = await http(service.baseUrl, method, account, body, undefined, keyed('k'));
        expect(conflict).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT', details: [{ field: 'Idempotency-Key', reason: expect.any(String) }] } });
      }
      expect(await snapshot()).toEqual(before);
      // The same spelling of the zone in another case is the same request.
      expect((await http(service.baseUrl, 'PUT', account, { planId: 'pro', timeZone: 'utc' }, undefined, keyed('k'))).headers['idempotent-replayed']).toBe('true');
      const other = await http(service.baseUrl, 'PUT', `/v1/accounts/acct-idem-${uniqueSuffix()}/subscription`, { planId: 'plus', timeZone: 'UTC' }, undefined, keyed('k'));
      expect(other).toMatchObject({ status: 200, body: { outcome: 'subscribed', planId: 'plus' } });
    });

    it('answers two concurrent first subscriptions under one key with one subscription and the same answer', async () => {
      const account = `/v1/accounts/acct-idem-${uniqueSuffix()}/subscription`;
      const outboxBefore = (await snapshot()).outbox.length;
      const [a, b] = await Promise.all([1, 2].map(() => http(service.baseUrl, 'PUT', account, { planId: 'pro', timeZone: 'UTC' }, undefined, keyed('race'))));
      expect(a).toMatchObject({ status: 200, body: { outcome: 'subscribed' } });
      expect(b).toMatchObject({ status: 200, body: a.body });
      expect((await snapshot()).outbox.length).toBe(outboxBefore + 1); // one CycleStarted
    });

    it.each([
      ['an empty key', ''],
      ['a key of 129 characters', 'k'.repeat(129)],
      ['a key with a space', 'two words'],
    ])('refuses %s with 400 naming Idempotency-Key, changing nothing', async (_case, key) => {
      const before = await snapshot();
      for (const [method, body] of [['PUT', { planId: 'pro', timeZone: 'UTC' }], ['DELETE', undefined]] as const) {
        const refused = await http(service.baseUrl, method, `/v1/accounts/acct-idem-${uniqueSuffix()}/subscription`, body, undefined, keyed(key));
        expect(refused).toMatchObject({ status: 400, body: { code: 'INVALID_IDEMPOTENCY_KEY', details: [{ field: 'Idempotency-Key', reason: expect.any(String) }] } });
      }
      expect(await snapshot()).toEqual(before);
    });
  });

  it('keeps a yearly plan until its paid year ends: a cancel or downgrade is scheduled for the year end, counted from the first cycle on it (stored with the row)', async () => {
    const yearly = `/v1/accounts/acct-yearly-${uniqueSuffix()}/subscription`;
    clock.set('2031-03-10T08:00:00.000Z');
    try {
      expect((await http(service.baseUrl, 'PUT', yearly, { planId: 'pro-yearly', timeZone: 'UTC' })).status).toBe(200);
      clock.set('2031-05-20T08:00:00.000Z'); // month 3 of the paid year
      const cancelled = await http(service.baseUrl, 'DELETE', yearly);
      expect(cancelled.body).toMatchObject({ outcome: 'cancel-scheduled', pendingChange: { planId: 'free', kind: 'cancel', effectiveAt: '2032-03-10T08:00:00.000Z' } });
      // Back to yearly; then pro-max (monthly, an upgrade: a new anchor) and a downgrade to plus-yearly at its month end.
      await http(service.baseUrl, 'PUT', yearly, { planId: 'pro-yearly' });
      expect((await http(service.baseUrl, 'PUT', yearly, { planId: 'pro-max' })).body).toMatchObject({ outcome: 'upgraded', anchor: '2031-05-20T08:00:00.000Z' });
      expect((await http(service.baseUrl, 'PUT', yearly, { planId: 'plus-yearly' })).body).toMatchObject({
        pendingChange: { planId: 'plus-yearly', kind: 'downgrade', effectiveAt: '2031-06-20T08:00:00.000Z' },
      });
      // Past that month end, before the scheduler ran: the request applies the due downgrade, then cancels the
      // yearly plan at the end of its year, cycles 1 to 12 of the anchor.
      clock.set('2031-07-01T08:00:00.000Z');
      expect((await http(service.baseUrl, 'DELETE', yearly)).body).toMatchObject({ planId: 'plus-yearly', pendingChange: { effectiveAt: '2032-06-20T08:00:00.000Z' } });
      // Undone and asked again, decided on the stored row: the same year end.
      expect((await http(service.baseUrl, 'PUT', yearly, { planId: 'plus-yearly' })).body).toMatchObject({ outcome: 'change-cancelled' });
      expect((await http(service.baseUrl, 'DELETE', yearly)).body).toMatchObject({ pendingChange: { planId: 'free', effectiveAt: '2032-06-20T08:00:00.000Z' } });
    } finally {
      clock.set('2031-03-10T08:00:00.000Z');
    }
  });

  it('keeps a time zone by its IANA name however it was spelled: the same zone in another case is the same zone, not TIME_ZONE_IMMUTABLE', async () => {
    const spelled = `/v1/accounts/acct-zone-${uniqueSuffix()}/subscription`;
    const first = await http(service.baseUrl, 'PUT', spelled, { planId: 'pro', timeZone: 'europe/berlin' });
    expect(first).toMatchObject({ status: 200, body: { timeZone: 'Europe/Berlin' } });
    const again = await http(service.baseUrl, 'PUT', spelled, { planId: 'starter', timeZone: 'Europe/Berlin' });
    expect(again.status).toBe(200);
    expect((await http(service.baseUrl, 'GET', spelled, undefined, READER_KEY)).body).toMatchObject({ planId: 'pro', timeZone: 'Europe/Berlin' });
    expect(await http(service.baseUrl, 'PUT', spelled, { planId: 'pro', timeZone: 'EUROPE/BERLIN' })).toMatchObject({ status: 200 });
  });

  it('subscribes an account whose id is as long as the other services take (128 characters), its cycle id within the contracts\' bound', async () => {
    const longId = `acct-long-${uniqueSuffix()}-`.padEnd(128, 'x');
    const subscribed = await http(service.baseUrl, 'PUT', `/v1/accounts/${longId}/subscription`, { planId: 'pro', timeZone: 'UTC' });
    expect(subscribed).toMatchObject({ status: 200, body: { outcome: 'subscribed', accountId: longId, planId: 'pro' } });
    const tooLong = await http(service.baseUrl, 'PUT', `/v1/accounts/${longId}x/subscription`, { planId: 'pro', timeZone: 'UTC' });
    expect(tooLong).toMatchObject({ status: 400, body: { code: 'INVALID_ACCOUNT_ID' } });
  });
});

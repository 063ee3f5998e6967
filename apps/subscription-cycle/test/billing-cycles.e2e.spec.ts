import { ManualClock } from '@tally/shared';
import { DataSource } from 'typeorm';
import { createTestSchema, uniqueSuffix, waitFor } from '@tally/testing';
import { CycleScheduler } from '../src/scheduler/cycle.worker';
import { PublishedMessages, WRITER_KEY, http, startApp, testTopic, type TestApp } from './subscription-cycle.harness';

/**
 * The billing calendar end to end: HTTP → subscriptions table + outbox → relay → Kafka, with a controllable clock,
 * the real PostgreSQL and the real broker. Each test moves the clock forward only.
 */
describe('subscription-cycle: billing cycles on Kafka', () => {
  const clock = new ManualClock(new Date('2027-01-01T00:00:00.000Z'));
  const topic = testTopic();
  let dropSchema: () => Promise<void>;
  let service: TestApp;
  let published: PublishedMessages;
  const account = (name: string) => `acct-${name}-${uniqueSuffix()}`;

  beforeAll(async () => {
    const { schema, drop } = await createTestSchema('sc_cycles');
    dropSchema = drop;
    service = await startApp({ schema, topic, clock });
    published = await PublishedMessages.start(topic);
  });

  afterAll(async () => {
    await published?.stop();
    await service?.app.close();
    await dropSchema?.();
  });

  const put = (id: string, body: unknown) => http(service.baseUrl, 'PUT', `/v1/accounts/${id}/subscription`, body);
  /** Sentinel: the outbox holds nothing unpublished and every published message has been read. */
  const drained = async () => {
    const unpublished = async () =>
      Number((await service.app.get(DataSource).query(`SELECT count(*)::int AS n FROM "${service.config.DATABASE_SCHEMA}".outbox_messages WHERE published_at IS NULL`))[0].n);
    await waitFor(async () => (await unpublished()) === 0);
    await published.caughtUp();
  };

  it('a cancel sent while a downgrade is due and the scheduler is down applies the downgrade first: the cycle under way starts on the lower plan', async () => {
    const id = account('late');
    clock.set('2031-01-10T12:00:00.000Z');
    expect((await put(id, { planId: 'pro', timeZone: 'UTC' })).status).toBe(200);
    await published.waitForCycles(id, 1);
    expect((await put(id, { planId: 'starter' })).body).toMatchObject({ outcome: 'downgrade-scheduled', pendingChange: { planId: 'starter', effectiveAt: '2031-02-10T12:00:00.000Z' } });
    const scheduler = service.app.get(CycleScheduler);
    await scheduler.stop(); // down (or far behind) when the downgrade falls due
    try {
      clock.set('2031-02-12T09:00:00.000Z');
      const cancelled = await http(service.baseUrl, 'DELETE', `/v1/accounts/${id}/subscription`);
      expect(cancelled.status).toBe(200);
      expect(cancelled.body).toMatchObject({ outcome: 'cancel-scheduled', planId: 'starter', pendingChange: { planId: 'free', kind: 'cancel', effectiveAt: '2031-03-10T12:00:00.000Z' } });
      const cycles = await published.waitForCycles(id, 2);
      expect(cycles[1]).toMatchObject({ planId: 'starter', allocation: '1000', periodStart: '2031-02-10T12:00:00.000Z', periodEnd: '2031-03-10T12:00:00.000Z' });
      // The downgrade taking effect and its renewal are the scheduler's doing, as on time, not the cancelling key's.
      await drained();
      expect(published.of(id).map((m) => [m.type, m.actor])).toEqual([['CycleStarted', 'writer'], ['PlanChanged', 'system:scheduler'], ['CycleStarted', 'system:scheduler']]);
    } finally {
      scheduler.start();
    }
    await scheduler.runDue();
    await drained();
    expect(published.cycles(id)).toHaveLength(2); // the scheduler back: nothing more is due in this cycle (no pro renewal)
    clock.set('2031-03-10T12:00:00.000Z');
    expect((await published.waitForCycles(id, 3))[2]).toMatchObject({ planId: 'free', allocation: '100' });
  });

  it('resets on Feb 28, Mar 31 and Apr 30 at the anchor\'s local time for a Jan 31 anchor in New York', async () => {
    const id = account('ny');
    clock.set('2027-01-31T15:00:00.000Z'); // 10:00 EST
    const subscribed = await put(id, { planId: 'pro', timeZone: 'America/New_York' });
    expect(subscribed.status).toBe(200);
    expect(subscribed.body).toMatchObject({ outcome: 'subscribed', planId: 'pro', timeZone: 'America/New_York', anchor: '2027-01-31T15:00:00.000Z' });

    let cycles = await published.waitForCycles(id, 1);
    expect(cycles[0]).toMatchObject({ planId: 'pro', allocation: '2500', periodStart: '2027-01-31T15:00:00.000Z', periodEnd: '2027-02-28T15:00:00.000Z' });

    clock.set('2027-02-28T14:59:59.999Z'); // a millisecond early: nothing is due
    await service.app.get(CycleScheduler).runDue();
    await drained();
    expect(published.cycles(id)).toHaveLength(1);

    clock.set('2027-02-28T15:00:00.000Z');
    cycles = await published.waitForCycles(id, 2);
    clock.set('2027-03-31T14:00:00.000Z'); // 10:00 EDT, after the DST change
    cycles = await published.waitForCycles(id, 3);
    clock.set('2027-04-30T14:00:00.000Z');
    cycles = await published.waitForCycles(id, 4);

    expect(cycles.map((c) => c.periodStart)).toEqual([
      '2027-01-31T15:00:00.000Z',
      '2027-02-28T15:00:00.000Z',
      '2027-03-31T14:00:00.000Z',
      '2027-04-30T14:00:00.000Z',
    ]);
    expect(cycles[3].periodEnd).toBe('2027-05-31T14:00:00.000Z');
    expect(new Set(cycles.map((c) => c.cycleId)).size).toBe(4);
    expect(published.of(id).map((m) => m.id)).toEqual(cycles.map((c) => c.cycleId));

    const view = await http(service.baseUrl, 'GET', `/v1/accounts/${id}/subscription`);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ planId: 'pro', currentCycle: { index: 3, start: '2027-04-30T14:00:00.000Z', end: '2027-05-31T14:00:00.000Z' }, pendingChange: null });
  });

  it('resets on Feb 29 in a leap year', async () => {
    const id = account('leap');
    clock.set('2028-01-31T15:00:00.000Z');
    expect((await put(id, { planId: 'starter', timeZone: 'America/New_York' })).status).toBe(200);
    await published.waitForCycles(id, 1);
    clock.set('2028-02-29T15:00:00.000Z');
    await published.waitForCycles(id, 2);
    clock.set('2028-03-31T14:00:00.000Z');
    const cycles = await published.waitForCycles(id, 3);
    expect(cycles.map((c) => c.periodStart)).toEqual(['2028-01-31T15:00:00.000Z', '2028-02-29T15:00:00.000Z', '2028-03-31T14:00:00.000Z']);
  });

  it('records who caused each message: the API key on a change, with the request id and trace it came with; the scheduler on a renewal', async () => {
    const id = account('audit');
    clock.set('2030-01-05T09:00:00.000Z');
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const headers = { 'x-request-id': 'req-audit-subscribe', traceparent };
    expect((await http(service.baseUrl, 'PUT', `/v1/accounts/${id}/subscription`, { planId: 'starter', timeZone: 'UTC' }, WRITER_KEY, headers)).status).toBe(200);
    await published.waitForCycles(id, 1);
    const [subscribed] = published.of(id);
    expect(subscribed.actor).toBe('writer');
    expect(subscribed.headers['x-request-id']).toBe('req-audit-subscribe');
    // The caller's trace continues through the outbox: same trace id, whichever span published it.
    expect(subscribed.headers.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-0[01]$/);

    clock.set('2030-01-06T09:00:00.000Z');
    expect((await http(service.baseUrl, 'PUT', `/v1/accounts/${id}/subscription`, { planId: 'pro' }, WRITER_KEY, { 'x-request-id': 'req-audit-upgrade' })).status).toBe(200);
    await published.waitForCycles(id, 2);
    const upgrade = published.of(id).slice(1);
    expect(upgrade.map((m) => [m.type, m.actor, m.headers['x-request-id']])).toEqual([
      ['PlanChanged', 'writer', 'req-audit-upgrade'],
      ['CycleStarted', 'writer', 'req-audit-upgrade'],
    ]);

    clock.set('2030-02-06T09:00:00.000Z');
    const renewed = (await published.waitForCycles(id, 3)) && published.of(id, 'CycleStarted')[2];
    expect(renewed.actor).toBe('system:scheduler');
    expect(renewed.headers['x-request-id']).toBeUndefined();
  });

  it('upgrades at once, downgrades and cancels at the next reset', async () => {
    const up = account('up');
    const down = account('down');
    const cancelled = account('cancel');
    clock.set('2029-01-10T12:00:00.000Z');
    expect((await put(up, { planId: 'starter', timeZone: 'UTC' })).status).toBe(200);
    expect((await put(down, { planId: 'pro', timeZone: 'Europe/Berlin' })).status).toBe(200);
    expect((await put(cancelled, { planId: 'plus', interval: 'monthly', timeZone: 'UTC' })).status).toBe(200);
    await published.waitForCycles(up, 1);
    await published.waitForCycles(down, 1);
    await published.waitForCycles(cancelled, 1);

    clock.set('2029-01-20T12:00:00.000Z');
    // Upgrade: a new cycle with the new allocation starts now.
    const upgraded = await put(up, { planId: 'pro' });
    expect(upgraded.status).toBe(200);
    expect(upgraded.body).toMatchObject({ outcome: 'upgraded', planId: 'pro', anchor: '2029-01-20T12:00:00.000Z' });
    const upCycles = await published.waitForCycles(up, 2);
    expect(upCycles[1]).toMatchObject({ planId: 'pro', allocation: '2500', periodStart: '2029-01-20T12:00:00.000Z', periodEnd: '2029-02-20T12:00:00.000Z' });
    expect(published.of(up).map((m) => m.type)).toEqual(['CycleStarted', 'PlanChanged', 'CycleStarted']);
    expect(published.of(up, 'PlanChanged')[0].data).toMatchObject({ planId: 'pro', unlimited: false, overdraftPolicy: 'write-off' });

    // Downgrade: scheduled for the end of the cycle, nothing published now; repeating it is a no-op.
    const downgraded = await put(down, { planId: 'starter', timeZone: 'Europe/Berlin' });
    expect(downgraded.status).toBe(200);
    expect(downgraded.body).toMatchObject({ outcome: 'downgrade-scheduled', planId: 'pro', pendingChange: { planId: 'starter', kind: 'downgrade', effectiveAt: '2029-02-10T12:00:00.000Z' } });
    expect((await put(down, { planId: 'starter' })).body).toMatchObject({ outcome: 'unchanged' });

    // Cancel: falls back to the free plan at the end of the cycle.
    const cancel = await http(service.baseUrl, 'DELETE', `/v1/accounts/${cancelled}/subscription`);
    expect(cancel.status).toBe(200);
    expect(cancel.body).toMatchObject({ outcome: 'cancel-scheduled', planId: 'plus', pendingChange: { planId: 'free', kind: 'cancel' } });

    await drained();
    expect(published.cycles(down)).toHaveLength(1);
    expect(published.cycles(cancelled)).toHaveLength(1);

    clock.set('2029-02-10T12:00:00.000Z');
    const downCycles = await published.waitForCycles(down, 2);
    expect(downCycles[1]).toMatchObject({ planId: 'starter', allocation: '1000', periodStart: '2029-02-10T12:00:00.000Z' });
    expect(published.of(down).map((m) => m.type)).toEqual(['CycleStarted', 'PlanChanged', 'CycleStarted']);
    const cancelCycles = await published.waitForCycles(cancelled, 2);
    expect(cancelCycles[1]).toMatchObject({ planId: 'free', allocation: '100', periodStart: '2029-02-10T12:00:00.000Z' });

    const view = await http(service.baseUrl, 'GET', `/v1/accounts/${down}/subscription`);
    expect(view.body).toMatchObject({ planId: 'starter', pendingChange: null });
    // The upgraded account's next reset follows its new anchor (Jan 20), not the old one (Jan 10).
    expect(published.cycles(up)).toHaveLength(2);
    clock.set('2029-02-20T12:00:00.000Z');
    expect((await published.waitForCycles(up, 3))[2]).toMatchObject({ planId: 'pro', periodStart: '2029-02-20T12:00:00.000Z' });
  });

  it('cancels at once with effective=now (a refund, a chargeback): the fallback plan starts now under a new anchor, even on a yearly plan', async () => {
    const ended = account('ended');
    clock.set('2029-03-05T12:00:00.000Z');
    expect((await put(ended, { planId: 'pro-yearly', timeZone: 'UTC' })).status).toBe(200);
    await published.waitForCycles(ended, 1);

    clock.set('2029-04-10T09:00:00.000Z'); // month 2 of the paid year, its cycle started by the scheduler
    await published.waitForCycles(ended, 2);
    const bad = await http(service.baseUrl, 'DELETE', `/v1/accounts/${ended}/subscription?effective=tomorrow`);
    expect(bad).toMatchObject({ status: 400, body: { code: 'VALIDATION_FAILED', details: [{ field: 'effective' }] } });
    const now = await http(service.baseUrl, 'DELETE', `/v1/accounts/${ended}/subscription?effective=now`);
    expect(now).toMatchObject({ status: 200, body: { outcome: 'cancelled', planId: 'free', anchor: '2029-04-10T09:00:00.000Z', pendingChange: null } });
    const cycles = await published.waitForCycles(ended, 3);
    expect(cycles[2]).toMatchObject({ planId: 'free', allocation: '100', periodStart: '2029-04-10T09:00:00.000Z', periodEnd: '2029-05-10T09:00:00.000Z' });
    expect(published.of(ended).map((m) => m.type)).toEqual(['CycleStarted', 'CycleStarted', 'PlanChanged', 'CycleStarted']);
    expect(published.of(ended, 'PlanChanged')[0]).toMatchObject({ actor: 'writer', data: { planId: 'free' } });
    // Retried: already on the fallback plan, nothing more.
    expect((await http(service.baseUrl, 'DELETE', `/v1/accounts/${ended}/subscription?effective=now`)).body).toMatchObject({ outcome: 'unchanged', planId: 'free' });
  });
});

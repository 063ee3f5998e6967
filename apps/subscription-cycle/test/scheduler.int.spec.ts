import { parsePrometheusText, sumOf } from '@tally/metrics';
import { ManualClock } from '@tally/shared';
import { DataSource } from 'typeorm';
import { createTestSchema, uniqueSuffix, waitFor } from '@tally/testing';
import { OutboxRelay } from '../src/outbox/outbox.relay';
import { CycleScheduler } from '../src/scheduler/cycle.worker';
import { PublishedMessages, http, startApp, testTopic, type TestApp } from './subscription-cycle.harness';

/**
 * Two app instances on one schema (each with its scheduler and outbox relay running every 25 ms, small batches
 * so they contend), one broker topic: every cycle must be published exactly once; after the schedulers were
 * stopped for three cycles, exactly the current cycle is published.
 */
describe('subscription-cycle: scheduler with several instances', () => {
  const clock = new ManualClock(new Date('2030-01-15T09:00:00.000Z'));
  const topic = testTopic();
  let dropSchema: () => Promise<void>;
  let first: TestApp;
  let second: TestApp;
  let published: PublishedMessages;
  const accounts = Array.from({ length: 12 }, (_, i) => `acct-multi-${i}-${uniqueSuffix()}`);

  beforeAll(async () => {
    const { schema, drop } = await createTestSchema('sc_sched');
    dropSchema = drop;
    const env = { SCHEDULER_BATCH: '3', OUTBOX_BATCH: '4' };
    first = await startApp({ schema, topic, clock, env });
    second = await startApp({ schema, topic, clock, env }); // migrations already applied: a no-op
    published = await PublishedMessages.start(topic);
  });

  afterAll(async () => {
    await published?.stop();
    await first?.app.close();
    await second?.app.close();
    await dropSchema?.();
  });

  const scrape = async () => parsePrometheusText(await (await fetch(`${first.baseUrl}/metrics`)).text());
  const unpublished = async () =>
    Number((await first.app.get(DataSource).query(`SELECT count(*)::int AS n FROM "${first.config.DATABASE_SCHEMA}".outbox_messages WHERE published_at IS NULL`))[0].n);

  it('publishes each cycle exactly once with two instances running', async () => {
    // Subscriptions arrive through both instances.
    for (const [i, id] of accounts.entries()) {
      const via = i % 2 === 0 ? first : second;
      const response = await http(via.baseUrl, 'PUT', `/v1/accounts/${id}/subscription`, { planId: i % 3 === 0 ? 'go' : 'starter', timeZone: 'Asia/Tokyo' });
      expect(response.status).toBe(200);
    }
    for (let month = 1; month <= 6; month++) {
      clock.set(`2030-${String(1 + month).padStart(2, '0')}-15T09:00:00.000Z`);
      for (const id of accounts) await published.waitForCycles(id, 1 + month);
    }
    await waitFor(async () => (await unpublished()) === 0);
    await published.caughtUp(); // every message published so far has been read: a duplicate would be counted

    for (const id of accounts) {
      const cycles = published.cycles(id);
      expect(cycles).toHaveLength(7);
      expect(new Set(cycles.map((c) => c.cycleId)).size).toBe(7);
      expect(cycles.map((c) => c.periodStart)).toEqual(cycles.map((c) => c.periodStart).sort());
      expect(new Set(published.of(id).map((m) => m.partition)).size).toBe(1); // keyed by account
    }
    expect(published.all).toHaveLength(accounts.length * 7);
  });

  // Each missed cycle with its own allowance: the ledger defers the renewal gap's usage to the next allowance, so
  // starting only the current one had October's allowance pay for August and September.
  it('after three missed cycles publishes each of them, in order, up to the current one', async () => {
    await Promise.all([first.app.get(CycleScheduler).stop(), second.app.get(CycleScheduler).stop()]);
    const before = new Map(accounts.map((id) => [id, published.cycles(id).length]));
    // Last cycle started 2030-07-15; the schedulers sleep through Aug, Sep and Oct, restart on Oct 20.
    clock.set('2030-10-20T00:00:00.000Z');
    await published.caughtUp(); // stopped schedulers (their loops have ended) published nothing more
    expect(published.all).toHaveLength(accounts.length * 7);

    first.app.get(CycleScheduler).start();
    second.app.get(CycleScheduler).start();
    for (const id of accounts) await published.waitForCycles(id, (before.get(id) ?? 0) + 3);
    await waitFor(async () => (await unpublished()) === 0);
    await published.caughtUp();
    for (const id of accounts) {
      const cycles = published.cycles(id);
      expect(cycles).toHaveLength(10);
      expect(cycles.slice(7).map((c) => c.periodStart)).toEqual(['2030-08-15T09:00:00.000Z', '2030-09-15T09:00:00.000Z', '2030-10-15T09:00:00.000Z']);
      expect(cycles[9]).toMatchObject({ periodEnd: '2030-11-15T09:00:00.000Z' });
    }

    const rows = await first.app.get(DataSource).query(`SELECT DISTINCT next_due_at FROM "${first.config.DATABASE_SCHEMA}".subscriptions`);
    expect(rows.map((r: { next_due_at: Date }) => r.next_due_at.toISOString())).toEqual(['2030-11-15T09:00:00.000Z']);
  });

  it('keeps due cycles in the outbox while no relay runs, then publishes each once', async () => {
    await Promise.all([first.app.get(OutboxRelay).stop(), second.app.get(OutboxRelay).stop()]);
    clock.set('2030-11-15T09:00:00.000Z');
    await waitFor(async () => (await unpublished()) === accounts.length);
    await published.caughtUp(); // the stopped relays published none of them
    expect(published.all).toHaveLength(accounts.length * 10);
    // GET /metrics: the backlog, read at scrape time.
    const waiting = await scrape();
    expect(sumOf(waiting, 'tally_outbox_depth_messages')).toBe(accounts.length);
    expect(sumOf(waiting, 'tally_outbox_oldest_age_seconds')).toBeGreaterThan(0);
    expect(sumOf(waiting, 'tally_outbox_oldest_age_seconds')).toBeLessThan(600);
    const publishedBefore = sumOf(waiting, 'tally_outbox_published_messages_total');

    first.app.get(OutboxRelay).start();
    second.app.get(OutboxRelay).start();
    for (const id of accounts) await published.waitForCycles(id, 11);
    await waitFor(async () => (await unpublished()) === 0);
    await published.caughtUp();
    expect(published.all).toHaveLength(accounts.length * 11);
    const drained = await scrape();
    expect([sumOf(drained, 'tally_outbox_depth_messages'), sumOf(drained, 'tally_outbox_oldest_age_seconds')]).toEqual([0, 0]);
    expect(sumOf(drained, 'tally_outbox_published_messages_total') - publishedBefore).toBe(accounts.length);
  });
});

/**
 * Between a cycle's end and the ledger's CycleStarted, an account without purchased credits is refused holds (its
 * allowance has expired, the next not granted yet): that gap should be the pipeline's latency, not up to a whole
 * scheduler interval. The scheduler wakes at the next due time when that comes before its interval.
 */
describe('subscription-cycle: the scheduler wakes when the next cycle is due', () => {
  let offsetMs = 0;
  const clock = { now: () => new Date(Date.now() + offsetMs) }; // real time, shifted: the test moves to just before a period end
  const topic = testTopic();
  let dropSchema: () => Promise<void>;
  let app: TestApp;
  let published: PublishedMessages;

  beforeAll(async () => {
    const { schema, drop } = await createTestSchema('sc_wake');
    dropSchema = drop;
    app = await startApp({ schema, topic, clock, env: { SCHEDULER_INTERVAL_MS: '60000' } });
    published = await PublishedMessages.start(topic);
  });

  afterAll(async () => {
    await published?.stop();
    await app?.app.close();
    await dropSchema?.();
  });

  it('publishes the next cycle within about a second of the period end, though its interval is a minute', async () => {
    const accountId = `acct-wake-${uniqueSuffix()}`;
    expect((await http(app.baseUrl, 'PUT', `/v1/accounts/${accountId}/subscription`, { planId: 'starter', timeZone: 'UTC' })).status).toBe(200);
    const [first] = await published.waitForCycles(accountId, 1);

    // Two seconds before the period ends, the scheduler runs (as it would at any of its ticks) and finds nothing due.
    offsetMs = Date.parse(first.periodEnd) - Date.now() - 2_000;
    const scheduler = app.app.get(CycleScheduler);
    await scheduler.stop();
    scheduler.start();

    const [, second] = await published.waitForCycles(accountId, 2, 5_000);
    expect(second.periodStart).toBe(first.periodEnd);
  });
});

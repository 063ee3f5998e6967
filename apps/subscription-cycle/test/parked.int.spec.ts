import { parsePrometheusText, sumOf } from '@tally/metrics';
import { ManualClock } from '@tally/shared';
import { DataSource } from 'typeorm';
import { createTestSchema, uniqueSuffix, waitFor } from '@tally/testing';
import { CycleScheduler } from '../src/scheduler/cycle.worker';
import { startApp, testTopic, type TestApp } from './subscription-cycle.harness';

/**
 * A subscription the scheduler cannot tick (its plan is not in this instance's catalogue: deleted, or an older pod
 * during a rollout that added it) is parked for an hour so the others go on; meanwhile its renewal is not granted and
 * the account's holds are refused. The log said so, nothing else did: now /metrics counts the parked subscriptions and
 * the oldest one's age (alert TallySubscriptionsParked), and a later successful tick clears it.
 */
describe('subscriptions the scheduler parked (PostgreSQL)', () => {
  const clock = new ManualClock(new Date('2030-03-01T00:00:00.000Z'));
  let drop: () => Promise<void>;
  let app: TestApp;

  beforeAll(async () => {
    const created = await createTestSchema('sc_parked');
    drop = created.drop;
    app = await startApp({ schema: created.schema, topic: testTopic(), clock });
  });

  afterAll(async () => {
    await app?.app.close();
    await drop?.();
  });

  const scrape = async () => parsePrometheusText(await (await fetch(`${app.baseUrl}/metrics`)).text());

  it('counts a parked subscription with its reason and age until a tick succeeds', async () => {
    const dataSource = app.app.get(DataSource);
    const s = `"${app.config.DATABASE_SCHEMA}"`;
    const accountId = `acct-parked-${uniqueSuffix()}`;
    await dataSource.query(
      `INSERT INTO ${s}.subscriptions (account_id, plan_id, time_zone, anchor, last_cycle_index, next_due_at)
       VALUES ($1, 'platinum-2019', 'UTC', '2030-01-01T00:00:00Z', 0, '2030-02-01T00:00:00Z')`,
      [accountId],
    );
    await app.app.get(CycleScheduler).runDue();
    const [row] = await dataSource.query(`SELECT next_due_at, parked_at, parked_reason FROM ${s}.subscriptions WHERE account_id = $1`, [accountId]);
    expect(row.next_due_at).toEqual(new Date('2030-03-01T01:00:00.000Z')); // parked for an hour
    expect(row.parked_at).toEqual(new Date('2030-03-01T00:00:00.000Z'));
    expect(row.parked_reason).toContain('UNKNOWN_PLAN');
    clock.set('2030-03-01T00:10:00.000Z');
    const parked = await scrape();
    expect(sumOf(parked, 'tally_subscriptions_parked')).toBe(1);
    expect(sumOf(parked, 'tally_subscriptions_parked_oldest_seconds')).toBe(600);

    // The catalogue has the plan again (here: the row moved to a plan it has): the next tick renews it and clears the mark.
    await dataSource.query(`UPDATE ${s}.subscriptions SET plan_id = 'pro', next_due_at = '2030-03-01T00:00:00Z' WHERE account_id = $1`, [accountId]);
    await waitFor(async () => (await dataSource.query(`SELECT parked_at FROM ${s}.subscriptions WHERE account_id = $1`, [accountId]))[0].parked_at === null);
    const cleared = await scrape();
    expect([sumOf(cleared, 'tally_subscriptions_parked'), sumOf(cleared, 'tally_subscriptions_parked_oldest_seconds')]).toEqual([0, 0]);
  });
});

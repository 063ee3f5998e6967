// The spec reads the shipped catalogue; the library itself does no I/O.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCatalogue } from './catalogue.parser';
import type { SubscriptionCommand } from './subscription.commands';
import { spec } from '@tally/decider/testing';
import { CATCH_UP_CYCLES, decide, evolve, initialState, nextDueAt, subscriptionDecider, type SubscriptionState } from './subscription.decider';
import type { CycleStarted, SubscriptionEvent } from './subscription.events';

const catalogue = parseCatalogue(readFileSync(join(__dirname, '../../../config/plans.yaml'), 'utf8'));
const accountId = 'acc-1';
const zone = 'America/New_York';
const ANCHOR = '2026-01-31T15:00:00.000Z'; // Jan 31 10:00 in New York

/**
 * given(events).when(command, now).then(events): the shared given/when/then of @tally/decider/testing, with the
 * catalogue in the context and instants written as ISO strings.
 */
const subscriptions = spec(subscriptionDecider);
function given(...events: SubscriptionEvent[]) {
  const history = subscriptions.given(events);
  return {
    state: history.state(),
    when(command: SubscriptionCommand, now: string) {
      const decision = history.when(command, { now: new Date(now), catalogue });
      return {
        then: (...expected: SubscriptionEvent[]) => decision.then(expected),
        thenThrows: (code: string, field: string) => decision.thenThrows(code, { field }),
      };
    },
  };
}

const subscribed = (planId = 'pro', anchor = ANCHOR): SubscriptionEvent => ({ type: 'Subscribed', data: { accountId, planId, zone, anchor } });

function cycle(planId: string, index: number, start: string, end: string, anchor = ANCHOR): CycleStarted {
  const plan = catalogue.plans.get(planId);
  if (!plan) throw new Error(planId);
  return {
    type: 'CycleStarted',
    data: {
      accountId,
      cycleId: `${accountId}:${anchor}:${index}:${planId}`,
      cycleIndex: index,
      planId,
      catalogueVersion: '2026-11-01',
      periodStart: new Date(start),
      periodEnd: new Date(end),
      allocation: plan.creditsPerMonth,
      unlimited: plan.unlimited,
      thresholds: plan.alertThresholds,
      overdraftPolicy: plan.overdraftPolicy,
    },
  };
}

// Cycle starts of the anchor, in UTC (New York is -05:00 in winter, -04:00 from March 8, 2026).
const JAN31 = ANCHOR;
const FEB28 = '2026-02-28T15:00:00.000Z';
const MAR31 = '2026-03-31T14:00:00.000Z';
const APR30 = '2026-04-30T14:00:00.000Z';
const cycle0 = cycle('pro', 0, JAN31, FEB28);
const cycle1 = cycle('pro', 1, FEB28, MAR31);

const subscribe = (planId = 'pro', at?: string, tz = zone): SubscriptionCommand => ({ type: 'Subscribe', data: { accountId, planId, zone: tz, ...(at ? { at } : {}) } });
const changePlan = (planId: string): SubscriptionCommand => ({ type: 'ChangePlan', data: { accountId, planId } });
const cancel: SubscriptionCommand = { type: 'Cancel', data: { accountId } };
const tick: SubscriptionCommand = { type: 'Tick', data: { accountId } };

describe('Subscribe', () => {
  it('anchors at now in the account zone and starts cycle 0 at once', () => {
    given().when(subscribe(), ANCHOR).then(subscribed(), cycle0);
    expect(cycle0.data).toMatchObject({ allocation: 2_500_000_000n, thresholds: [20, 5], overdraftPolicy: 'write-off', unlimited: false });
  });

  it('grants an unlimited plan no allocation but flags it unlimited', () => {
    given().when(subscribe('custom'), ANCHOR).then(subscribed('custom'), cycle('custom', 0, JAN31, FEB28));
    expect(cycle('custom', 0, JAN31, FEB28).data).toMatchObject({ allocation: 0n, unlimited: true });
  });

  it('takes a back-dated anchor and starts only the cycle containing now', () => {
    given()
      .when(subscribe('pro', '2026-01-31T10:00:00-05:00'), '2026-04-10T00:00:00Z')
      .then(subscribed(), cycle('pro', 2, MAR31, APR30));
  });

  it.each([
    ['an unknown plan', subscribe('platinum'), 'UNKNOWN_PLAN', 'planId'],
    ['an unknown time zone', subscribe('pro', undefined, 'Mars/Olympus'), 'INVALID_TIME_ZONE', 'zone'],
    ['an offset instead of a zone', subscribe('pro', undefined, '-05:00'), 'INVALID_TIME_ZONE', 'zone'],
    ['an anchor in the future', subscribe('pro', '2026-02-01T00:00:00Z'), 'INVALID_ANCHOR', 'at'],
    ['an anchor without offset', subscribe('pro', '2026-01-01T00:00:00'), 'INVALID_ANCHOR', 'at'],
  ])('refuses %s', (_case, command, code, field) => {
    given().when(command, ANCHOR).thenThrows(code, field);
  });

  it('refuses a second subscription', () => {
    given(subscribed(), cycle0).when(subscribe('plus'), FEB28).thenThrows('ALREADY_SUBSCRIBED', 'accountId');
  });
});

describe('Tick', () => {
  it('does nothing inside a started cycle', () => {
    given(subscribed(), cycle0).when(tick, '2026-02-28T14:59:59.999Z').then();
  });

  it('starts the next cycle at its start, clamped to Feb 28 at 10:00 local', () => {
    given(subscribed(), cycle0).when(tick, FEB28).then(cycle1);
  });

  // Each missed cycle has its own allowance: the ledger defers the renewal gap's usage to the next allowance, so starting
  // only the cycle containing now had July's allowance pay June's usage, and June's allowance was never granted.
  it('starts every cycle missed during downtime, in order, up to the current one', () => {
    const MAY31 = '2026-05-31T14:00:00.000Z';
    const JUN30 = '2026-06-30T14:00:00.000Z';
    given(subscribed(), cycle0)
      .when(tick, '2026-07-15T00:00:00Z')
      .then(
        cycle1,
        cycle('pro', 2, MAR31, APR30),
        cycle('pro', 3, APR30, MAY31),
        cycle('pro', 4, MAY31, JUN30),
        cycle('pro', 5, JUN30, '2026-07-31T14:00:00.000Z'),
      );
  });

  it(`starts at most CATCH_UP_CYCLES (${CATCH_UP_CYCLES}) missed cycles: the latest ones`, () => {
    const events = decide(tick, [subscribed(), cycle0].reduce(evolve, initialState()), { now: new Date('2028-01-15T00:00:00Z'), catalogue });
    expect(events.map((event) => (event as CycleStarted).data.cycleIndex)).toEqual(Array.from({ length: CATCH_UP_CYCLES }, (_, i) => 23 - CATCH_UP_CYCLES + 1 + i)); // 2028-01-15 is in cycle 23 (from 2027-12-31)
  });

  it('does not start a cycle twice', () => {
    given(subscribed(), cycle0, cycle('pro', 5, '2026-06-30T14:00:00.000Z', '2026-07-31T14:00:00.000Z')).when(tick, '2026-07-20T00:00:00Z').then();
  });

  it('refuses an account without subscription', () => {
    given().when(tick, FEB28).thenThrows('NOT_SUBSCRIBED', 'accountId');
  });
});

describe('ChangePlan', () => {
  const now = '2026-02-10T12:00:00.000Z'; // Feb 10 07:00 in New York

  it('upgrades at once: a new anchor now and a new cycle with the new allowance', () => {
    given(subscribed(), cycle0)
      .when(changePlan('plus'), now)
      .then(
        { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro', toPlanId: 'plus', kind: 'upgrade', anchor: now } },
        // the new cycle ends on Mar 10 at 07:00 New York time, which is daylight time by then
        cycle('plus', 0, now, '2026-03-10T11:00:00.000Z', now),
      );
  });

  it('after an upgrade, cycles follow the new anchor', () => {
    const upgraded = given(subscribed(), cycle0, ...decide(changePlan('plus'), given(subscribed(), cycle0).state, { now: new Date(now), catalogue }));
    expect(nextDueAt(upgraded.state)).toEqual(new Date('2026-03-10T11:00:00.000Z'));
    upgraded.when(tick, FEB28).then();
    upgraded.when(tick, '2026-03-10T11:00:00.000Z').then(cycle('plus', 1, '2026-03-10T11:00:00.000Z', '2026-04-10T11:00:00.000Z', now));
  });

  it('schedules a downgrade for the end of the current cycle', () => {
    given(subscribed(), cycle0)
      .when(changePlan('starter'), now)
      .then({ type: 'PlanChangeScheduled', data: { accountId, fromPlanId: 'pro', toPlanId: 'starter', effectiveAt: new Date(FEB28), kind: 'downgrade' } });
  });

  const downgradeScheduled: SubscriptionEvent = {
    type: 'PlanChangeScheduled',
    data: { accountId, fromPlanId: 'pro', toPlanId: 'starter', effectiveAt: new Date(FEB28), kind: 'downgrade' },
  };

  it('applies a scheduled downgrade on the Tick at the cycle end: the next cycle uses the new plan', () => {
    given(subscribed(), cycle0, downgradeScheduled).when(tick, '2026-02-20T00:00:00Z').then();
    given(subscribed(), cycle0, downgradeScheduled)
      .when(tick, FEB28)
      .then(
        { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro', toPlanId: 'starter', kind: 'downgrade', anchor: ANCHOR } },
        cycle('starter', 1, FEB28, MAR31),
      );
  });

  it('applies a scheduled downgrade late after downtime, at the cycle it took effect, and starts the missed cycles on the new plan', () => {
    given(subscribed(), cycle0, downgradeScheduled)
      .when(tick, '2026-04-01T00:00:00Z')
      .then(
        { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro', toPlanId: 'starter', kind: 'downgrade', anchor: ANCHOR } },
        cycle('starter', 1, FEB28, MAR31),
        cycle('starter', 2, MAR31, APR30),
      );
  });

  it('starts the missed cycles before a scheduled downgrade on the old plan, and the ones from it on the new', () => {
    const scheduledAtMar31 = { type: 'PlanChangeScheduled' as const, data: { accountId, fromPlanId: 'pro', toPlanId: 'starter', effectiveAt: new Date(MAR31), kind: 'downgrade' as const } };
    given(subscribed(), cycle0, scheduledAtMar31)
      .when(tick, '2026-04-01T00:00:00Z')
      .then(
        cycle1,
        { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro', toPlanId: 'starter', kind: 'downgrade', anchor: ANCHOR } },
        cycle('starter', 2, MAR31, APR30),
      );
  });

  // The scheduler behind (restarting, working through its batches) when the upgrade comes: the new anchor must not leave
  // the cycles already due unstarted, or the upgrade's allowance would pay for their usage.
  it('starts the cycles already due before an upgrade decided while the scheduler is behind', () => {
    const upgradeAt = '2026-04-10T12:00:00.000Z';
    given(subscribed(), cycle0)
      .when(changePlan('plus'), upgradeAt)
      .then(
        cycle1,
        cycle('pro', 2, MAR31, APR30),
        { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro', toPlanId: 'plus', kind: 'upgrade', anchor: upgradeAt } },
        cycle('plus', 0, upgradeAt, '2026-05-10T12:00:00.000Z', upgradeAt),
      );
  });

  it('schedules for the end of the calendar cycle even when the scheduler is behind', () => {
    given(subscribed(), cycle0)
      .when(changePlan('starter'), '2026-03-05T00:00:00Z')
      .then({ type: 'PlanChangeScheduled', data: { accountId, fromPlanId: 'pro', toPlanId: 'starter', effectiveAt: new Date(MAR31), kind: 'downgrade' } });
  });

  it('is idempotent for a downgrade already scheduled', () => {
    given(subscribed(), cycle0, downgradeScheduled).when(changePlan('starter'), now).then();
  });

  it('replaces a scheduled downgrade with another one', () => {
    given(subscribed(), cycle0, downgradeScheduled)
      .when(changePlan('free'), now)
      .then({ type: 'PlanChangeScheduled', data: { accountId, fromPlanId: 'pro', toPlanId: 'free', effectiveAt: new Date(FEB28), kind: 'downgrade' } });
  });

  it('undoes a scheduled downgrade when asked for the plan already held', () => {
    const undone = given(subscribed(), cycle0, downgradeScheduled, {
      type: 'PlanChangeCancelled',
      data: { accountId, planId: 'pro', cancelledToPlanId: 'starter', kind: 'downgrade' },
    });
    given(subscribed(), cycle0, downgradeScheduled)
      .when(changePlan('pro'), now)
      .then({ type: 'PlanChangeCancelled', data: { accountId, planId: 'pro', cancelledToPlanId: 'starter', kind: 'downgrade' } });
    undone.when(tick, FEB28).then(cycle1);
  });

  it('an upgrade supersedes a scheduled downgrade', () => {
    const events = decide(changePlan('agency'), given(subscribed(), cycle0, downgradeScheduled).state, { now: new Date(now), catalogue });
    const after = given(subscribed(), cycle0, downgradeScheduled, ...events);
    expect(after.state).toMatchObject({ planId: 'agency', anchor: now, pending: null, lastCycleIndex: 0 });
    after.when(tick, FEB28).then();
  });

  it('refuses an unknown plan', () => {
    given(subscribed(), cycle0).when(changePlan('platinum'), now).thenThrows('UNKNOWN_PLAN', 'planId');
  });

  it('changes nothing when asked for the plan already held with nothing scheduled (an upgrade retried after it succeeded)', () => {
    given(subscribed(), cycle0).when(changePlan('pro'), now).then();
    const upgrade = decide(changePlan('pro'), given(subscribed('starter'), cycle('starter', 0, JAN31, FEB28)).state, { now: new Date(now), catalogue });
    expect(upgrade.map((event) => event.type)).toEqual(['PlanChanged', 'CycleStarted']);
    given(subscribed('starter'), cycle('starter', 0, JAN31, FEB28), ...upgrade).when(changePlan('pro'), now).then();
  });

  it('refuses an account without subscription', () => {
    given().when(changePlan('pro'), now).thenThrows('NOT_SUBSCRIBED', 'accountId');
  });
});

describe('a command while a scheduled change is due and the scheduler has not applied it yet (behind, or down)', () => {
  const downgradeDue: SubscriptionEvent = {
    type: 'PlanChangeScheduled',
    data: { accountId, fromPlanId: 'pro', toPlanId: 'starter', effectiveAt: new Date(FEB28), kind: 'downgrade' },
  };
  const late = '2026-03-02T12:00:00.000Z'; // in cycle 1 (Feb 28 – Mar 31), not started yet
  const applied: SubscriptionEvent[] = [
    { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro', toPlanId: 'starter', kind: 'downgrade', anchor: ANCHOR } },
    cycle('starter', 1, FEB28, MAR31),
  ];

  it('a cancel applies the due downgrade first, as the scheduler would have, then schedules the cancel from the plan now held', () => {
    given(subscribed(), cycle0, downgradeDue)
      .when(cancel, late)
      .then(...applied, { type: 'PlanChangeScheduled', data: { accountId, fromPlanId: 'starter', toPlanId: 'free', effectiveAt: new Date(MAR31), kind: 'cancel' } });
  });

  it('another downgrade applies the due one first: the cycle under way is never renewed on the plan left behind', () => {
    given(subscribed(), cycle0, downgradeDue)
      .when(changePlan('free'), late)
      .then(...applied, { type: 'PlanChangeScheduled', data: { accountId, fromPlanId: 'starter', toPlanId: 'free', effectiveAt: new Date(MAR31), kind: 'downgrade' } });
  });

  it('asking for the plan left behind is too late to undo the change: it is an upgrade from the plan now held', () => {
    given(subscribed(), cycle0, downgradeDue)
      .when(changePlan('pro'), late)
      .then(
        ...applied,
        { type: 'PlanChanged', data: { accountId, fromPlanId: 'starter', toPlanId: 'pro', kind: 'upgrade', anchor: late } },
        cycle('pro', 0, late, '2026-04-02T11:00:00.000Z', late), // 07:00 New York, daylight time by then
      );
  });

  it('a cancel already due makes a second cancel what it is on time: the due cancel is applied, and the second changes nothing more', () => {
    const cancelDue: SubscriptionEvent = { type: 'PlanChangeScheduled', data: { accountId, fromPlanId: 'pro', toPlanId: 'free', effectiveAt: new Date(FEB28), kind: 'cancel' } };
    given(subscribed(), cycle0, cancelDue)
      .when(cancel, late)
      .then({ type: 'PlanChanged', data: { accountId, fromPlanId: 'pro', toPlanId: 'free', kind: 'cancel', anchor: ANCHOR } }, cycle('free', 1, FEB28, MAR31));
  });

  it('a change not due yet is left to the scheduler (a command decides on the state as it is)', () => {
    given(subscribed(), cycle0, downgradeDue)
      .when(cancel, '2026-02-28T14:59:59.000Z')
      .then({ type: 'PlanChangeScheduled', data: { accountId, fromPlanId: 'pro', toPlanId: 'free', effectiveAt: new Date(FEB28), kind: 'cancel' } });
  });
});

describe('Cancel', () => {
  const now = '2026-03-15T12:00:00.000Z';
  const cancelScheduled: SubscriptionEvent = {
    type: 'PlanChangeScheduled',
    data: { accountId, fromPlanId: 'pro', toPlanId: 'free', effectiveAt: new Date(MAR31), kind: 'cancel' },
  };

  it('schedules the move to the fallback plan at the end of the current cycle', () => {
    given(subscribed(), cycle0, cycle1).when(cancel, now).then(cancelScheduled);
  });

  it('moves to the fallback plan on the Tick at the cycle end', () => {
    given(subscribed(), cycle0, cycle1, cancelScheduled)
      .when(tick, MAR31)
      .then(
        { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro', toPlanId: 'free', kind: 'cancel', anchor: ANCHOR } },
        cycle('free', 2, MAR31, APR30),
      );
  });

  it('is idempotent', () => {
    given(subscribed(), cycle0, cycle1, cancelScheduled).when(cancel, now).then();
  });

  it('can be undone by asking for the current plan', () => {
    given(subscribed(), cycle0, cycle1, cancelScheduled)
      .when(changePlan('pro'), now)
      .then({ type: 'PlanChangeCancelled', data: { accountId, planId: 'pro', cancelledToPlanId: 'free', kind: 'cancel' } });
  });

  describe('immediately (a refund, a chargeback)', () => {
    const terminate: SubscriptionCommand = { type: 'Cancel', data: { accountId, immediately: true } };

    it('ends the plan now: the fallback plan under a new anchor, its first cycle started at once (the allowance under way expires at the ledger)', () => {
      given(subscribed(), cycle0, cycle1)
        .when(terminate, now)
        .then(
          { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro', toPlanId: 'free', kind: 'terminate', anchor: now } },
          cycle('free', 0, now, '2026-04-15T12:00:00.000Z', now),
        );
    });

    it('supersedes a cancel scheduled at the cycle end, and a yearly plan does not wait for its paid year', () => {
      const after = given(subscribed(), cycle0, cycle1, cancelScheduled);
      const events = decide(terminate, after.state, { now: new Date(now), catalogue });
      expect(events.map((event) => event.type)).toEqual(['PlanChanged', 'CycleStarted']);
      expect(given(subscribed(), cycle0, cycle1, cancelScheduled, ...events).state).toMatchObject({ planId: 'free', anchor: now, pending: null, lastCycleIndex: 0, planFromCycle: 0 });
      const yearly = decide(terminate, given(subscribed('pro-yearly'), cycle('pro-yearly', 0, JAN31, FEB28)).state, { now: new Date(now), catalogue });
      // Its cycle 1 (from Feb 28) was due and not started (the scheduler behind): started first, on the plan left.
      expect(yearly[0]).toMatchObject({ type: 'CycleStarted', data: { planId: 'pro-yearly', cycleIndex: 1, periodStart: new Date(FEB28) } });
      expect(yearly[1]).toMatchObject({ type: 'PlanChanged', data: { fromPlanId: 'pro-yearly', toPlanId: 'free', kind: 'terminate', anchor: now } });
    });

    it('changes nothing on the fallback plan (retried after it took effect)', () => {
      const events = decide(terminate, given(subscribed(), cycle0, cycle1).state, { now: new Date(now), catalogue });
      given(subscribed(), cycle0, cycle1, ...events).when(terminate, now).then();
    });
  });

  it('changes nothing on the fallback plan (a cancel retried after it took effect)', () => {
    given(subscribed('free'), cycle('free', 0, JAN31, FEB28)).when(cancel, now).then();
  });

  it('refuses an account without subscription', () => {
    given().when(cancel, now).thenThrows('NOT_SUBSCRIBED', 'accountId');
  });

  it('schedules after the cycles already started: a scheduler (its clock ahead) started cycle 1, this instance reads a time in cycle 0', () => {
    given(subscribed(), cycle0, cycle1)
      .when(cancel, '2026-02-28T14:59:59.500Z')
      .then({ type: 'PlanChangeScheduled', data: { accountId, fromPlanId: 'pro', toPlanId: 'free', effectiveAt: new Date(MAR31), kind: 'cancel' } });
  });

  it('upgrades from the start of the cycle already started: a scheduler (its clock ahead) started cycle 1, this instance reads a time in cycle 0', () => {
    // The ledger refuses a cycle that starts before its current one: anchored at now, this upgrade's cycle would be dead-lettered.
    given(subscribed(), cycle0, cycle1)
      .when(changePlan('plus'), '2026-02-28T14:59:59.500Z')
      .then(
        { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro', toPlanId: 'plus', kind: 'upgrade', anchor: FEB28 } },
        cycle('plus', 0, FEB28, '2026-03-28T14:00:00.000Z', FEB28),
      );
  });

  it('on an instance whose clock is behind the one that set the anchor, schedules at the end of cycle 0', () => {
    given(subscribed(), cycle0)
      .when(cancel, '2026-01-31T14:59:59.800Z')
      .then({ type: 'PlanChangeScheduled', data: { accountId, fromPlanId: 'pro', toPlanId: 'free', effectiveAt: new Date(FEB28), kind: 'cancel' } });
  });
});

describe('nextDueAt', () => {
  const state = (...events: SubscriptionEvent[]): SubscriptionState => given(...events).state;

  it('is null without a subscription', () => {
    expect(nextDueAt(initialState())).toBeNull();
  });

  it('is the start of the next cycle', () => {
    expect(nextDueAt(state(subscribed(), cycle0))).toEqual(new Date(FEB28));
    expect(nextDueAt(state(subscribed(), cycle0, cycle1))).toEqual(new Date(MAR31));
  });

  it('is the scheduled change when it comes first', () => {
    const early: SubscriptionEvent = {
      type: 'PlanChangeScheduled',
      data: { accountId, fromPlanId: 'pro', toPlanId: 'starter', effectiveAt: new Date('2026-02-15T00:00:00Z'), kind: 'downgrade' },
    };
    expect(nextDueAt(state(subscribed(), cycle0, early))).toEqual(new Date('2026-02-15T00:00:00Z'));
  });

  it('drives a scheduler: ticking at every due time starts every cycle once, in order', () => {
    let events: SubscriptionEvent[] = [subscribed(), cycle0];
    const started: number[] = [];
    for (let step = 0; step < 24; step++) {
      const current = given(...events).state;
      const due = nextDueAt(current);
      if (!due) throw new Error('expected a due time');
      const produced = decide(tick, current, { now: due, catalogue });
      started.push(...produced.flatMap((event) => (event.type === 'CycleStarted' ? [event.data.cycleIndex] : [])));
      events = [...events, ...produced];
    }
    expect(started).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  });
});

describe('a retired plan (pro retired)', () => {
  const retiredCatalogue = parseCatalogue(readFileSync(join(__dirname, '../../../config/plans.yaml'), 'utf8').replace('rank: 20 }', 'rank: 20, retired: true }'));
  const at = (now: string) => ({ now: new Date(now), catalogue: retiredCatalogue });

  it('is offered to nobody: Subscribe to it is PLAN_RETIRED', () => {
    subscriptions.given([]).when(subscribe('pro'), at(JAN31)).thenThrows('PLAN_RETIRED', { field: 'planId' });
  });

  it('is not a plan to change to: PLAN_RETIRED', () => {
    subscriptions.given([subscribed('starter'), cycle('starter', 0, JAN31, FEB28)]).when(changePlan('pro'), at('2026-02-10T12:00:00.000Z')).thenThrows('PLAN_RETIRED', { field: 'planId' });
  });

  it('still renews for the accounts on it', () => {
    subscriptions.given([subscribed(), cycle0]).when(tick, at(FEB28)).then([cycle1]);
  });

  it('can be left', () => {
    const state = subscriptions.given([subscribed(), cycle0]).state();
    expect(decide(changePlan('plus'), state, at('2026-02-10T12:00:00.000Z')).map((event) => event.type)).toEqual(['PlanChanged', 'CycleStarted']);
    expect(decide(cancel, state, at('2026-02-10T12:00:00.000Z')).map((event) => event.type)).toEqual(['PlanChangeScheduled']);
  });
});

describe('a yearly plan is paid for a year: leaving it takes effect when the paid year ends, not at the month end', () => {
  // Cycle starts 12 and 24 months after the anchor (New York winter: 10:00 local is 15:00 UTC).
  const YEAR1_END = '2027-01-31T15:00:00.000Z';
  const YEAR2_END = '2028-01-31T15:00:00.000Z';
  const yearlyCycle0 = cycle('pro-yearly', 0, JAN31, FEB28);
  const yearlyCycle1 = cycle('pro-yearly', 1, FEB28, MAR31);
  const scheduled = (toPlanId: string, effectiveAt: string, kind: 'cancel' | 'downgrade', fromPlanId = 'pro-yearly'): SubscriptionEvent => ({
    type: 'PlanChangeScheduled',
    data: { accountId, fromPlanId, toPlanId, effectiveAt: new Date(effectiveAt), kind },
  });

  it('a cancel in month 2 moves to the fallback plan at the end of the first year', () => {
    given(subscribed('pro-yearly'), yearlyCycle0, yearlyCycle1).when(cancel, '2026-03-15T12:00:00.000Z').then(scheduled('free', YEAR1_END, 'cancel'));
  });

  it('a downgrade to a monthly plan waits for the year end too', () => {
    given(subscribed('pro-yearly'), yearlyCycle0).when(changePlan('pro'), '2026-02-10T12:00:00.000Z').then(scheduled('pro', YEAR1_END, 'downgrade'));
  });

  it('in the second year, at the end of the second year', () => {
    const cycle13 = cycle('pro-yearly', 13, '2027-02-28T15:00:00.000Z', '2027-03-31T14:00:00.000Z');
    given(subscribed('pro-yearly'), yearlyCycle0, cycle13).when(cancel, '2027-03-01T12:00:00.000Z').then(scheduled('free', YEAR2_END, 'cancel'));
  });

  it('in the last month of a year, at its end (the next cycle start)', () => {
    const cycle11 = cycle('pro-yearly', 11, '2026-12-31T15:00:00.000Z', YEAR1_END);
    given(subscribed('pro-yearly'), yearlyCycle0, cycle11).when(cancel, '2027-01-20T12:00:00.000Z').then(scheduled('free', YEAR1_END, 'cancel'));
  });

  it('the Tick at the year end applies the cancel', () => {
    const cycle11 = cycle('pro-yearly', 11, '2026-12-31T15:00:00.000Z', YEAR1_END);
    given(subscribed('pro-yearly'), yearlyCycle0, cycle11, scheduled('free', YEAR1_END, 'cancel'))
      .when(tick, YEAR1_END)
      .then(
        { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro-yearly', toPlanId: 'free', kind: 'cancel', anchor: ANCHOR } },
        cycle('free', 12, YEAR1_END, '2027-02-28T15:00:00.000Z'),
      );
  });

  it('a yearly plan reached by a downgrade counts its year from the change, not from the anchor', () => {
    // pro-max (monthly) → plus-yearly at the end of cycle 0: the paid year is cycles 1 to 12.
    const toYearly = scheduled('plus-yearly', FEB28, 'downgrade', 'pro-max');
    given(subscribed('pro-max'), cycle('pro-max', 0, JAN31, FEB28), toYearly)
      .when(cancel, '2026-03-15T12:00:00.000Z')
      .then(
        { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro-max', toPlanId: 'plus-yearly', kind: 'downgrade', anchor: ANCHOR } },
        cycle('plus-yearly', 1, FEB28, MAR31),
        scheduled('free', '2027-02-28T15:00:00.000Z', 'cancel', 'plus-yearly'),
      );
  });

  it('an upgrade to a yearly plan anchored at the old anchor (an instance whose clock is behind) starts its year at cycle 0', () => {
    // The upgrade anchors at the start of the cycle already started, here the anchor itself: the same anchor string.
    const history = given(subscribed('pro'), cycle0);
    const upgraded = history.when(changePlan('pro-yearly'), '2026-01-31T14:59:59.990Z');
    upgraded.then(
      { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro', toPlanId: 'pro-yearly', kind: 'upgrade', anchor: ANCHOR } },
      cycle('pro-yearly', 0, JAN31, FEB28),
    );
    const events: SubscriptionEvent[] = [subscribed('pro'), cycle0, { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro', toPlanId: 'pro-yearly', kind: 'upgrade', anchor: ANCHOR } }, cycle('pro-yearly', 0, JAN31, FEB28)];
    given(...events).when(cancel, '2026-03-15T12:00:00.000Z').then(scheduled('free', YEAR1_END, 'cancel'));
  });

  it('an upgrade from a yearly plan is still at once, and starts a new paid year', () => {
    given(subscribed('pro-yearly'), yearlyCycle0, yearlyCycle1)
      .when(changePlan('pro-max'), '2026-03-10T16:00:00.000Z')
      .then(
        { type: 'PlanChanged', data: { accountId, fromPlanId: 'pro-yearly', toPlanId: 'pro-max', kind: 'upgrade', anchor: '2026-03-10T16:00:00.000Z' } },
        cycle('pro-max', 0, '2026-03-10T16:00:00.000Z', '2026-04-10T16:00:00.000Z', '2026-03-10T16:00:00.000Z'),
      );
  });
});

import type { Decider } from '@tally/decider';
import { parseInstant } from '@tally/instant';
import { canonicalZone, cycleAt, cycleStart, isValidZone, type BillingAnchor } from './billing-calendar.model';
import { boundedId } from './bounded-id.model';
import type { Catalogue, Plan } from './catalogue.model';
import type { Cancel, ChangePlan, Subscribe, SubscriptionCommand, Tick } from './subscription.commands';
import { SubscriptionError } from './subscription.errors';
import type { CycleStarted, PlanChangeScheduled, SubscriptionEvent } from './subscription.events';

export interface SubscriptionContext {
  readonly now: Date;
  readonly catalogue: Catalogue;
}

export interface PendingPlanChange {
  readonly toPlanId: string;
  readonly kind: PlanChangeScheduled['data']['kind'];
  readonly effectiveAt: Date;
}

export type SubscriptionState =
  | { readonly status: 'none' }
  | {
      readonly status: 'active';
      readonly accountId: string;
      readonly planId: string;
      readonly zone: string;
      readonly anchor: string;
      /** Index (under the current anchor) of the last cycle started; -1 right after a new anchor. */
      readonly lastCycleIndex: number;
      /**
       * Index (under the current anchor) of the first cycle on the current plan: 0 from a new anchor (a subscription,
       * an upgrade), the cycle a scheduled change took effect at otherwise. A yearly plan's paid years count from it.
       */
      readonly planFromCycle: number;
      readonly pending: PendingPlanChange | null;
    };

type Active = Extract<SubscriptionState, { status: 'active' }>;

export const initialState = (): SubscriptionState => ({ status: 'none' });

function planOf(catalogue: Catalogue, planId: string, field = 'planId'): Plan {
  const plan = catalogue.plans.get(planId);
  if (!plan) throw new SubscriptionError('UNKNOWN_PLAN', `no plan "${planId}" in catalogue ${catalogue.version}`, { field, planId });
  return plan;
}

/** `plan` if an account may move to it: not retired. */
function offered(plan: Plan): Plan {
  if (plan.retired) throw new SubscriptionError('PLAN_RETIRED', `plan "${plan.id}" is retired: it is no longer offered`, { field: 'planId', planId: plan.id });
  return plan;
}

function active(state: SubscriptionState, accountId: string): Active {
  if (state.status !== 'active') throw new SubscriptionError('NOT_SUBSCRIBED', `account ${accountId} has no subscription`, { field: 'accountId', accountId });
  return state;
}

const anchorOf = (state: Pick<Active, 'anchor' | 'zone'>): BillingAnchor => ({ at: state.anchor, zone: state.zone });

function cycleStarted(accountId: string, anchor: BillingAnchor, plan: Plan, catalogue: Catalogue, now: Date): CycleStarted {
  return cycleStartedOf(accountId, anchor, plan, catalogue, cycleAt(anchor, now));
}

/** Cycle `index` of the anchor (a cycle missed while the scheduler was down, started late: tick). */
function cycleStartedAt(accountId: string, anchor: BillingAnchor, plan: Plan, catalogue: Catalogue, index: number): CycleStarted {
  return cycleStartedOf(accountId, anchor, plan, catalogue, { index, start: cycleStart(anchor, index), end: cycleStart(anchor, index + 1) });
}

function cycleStartedOf(accountId: string, anchor: BillingAnchor, plan: Plan, catalogue: Catalogue, cycle: { index: number; start: Date; end: Date }): CycleStarted {
  return {
    type: 'CycleStarted',
    data: {
      accountId,
      // The plan is part of the id so that an upgrade in the very millisecond of the anchor still grants.
      cycleId: boundedId(`${accountId}:${anchor.at}:${cycle.index}:${plan.id}`, accountId, 'cycle'),
      cycleIndex: cycle.index,
      planId: plan.id,
      catalogueVersion: catalogue.version,
      periodStart: cycle.start,
      periodEnd: cycle.end,
      allocation: plan.creditsPerMonth,
      unlimited: plan.unlimited,
      thresholds: plan.alertThresholds,
      overdraftPolicy: plan.overdraftPolicy,
    },
  };
}

function subscribe({ data }: Subscribe, state: SubscriptionState, { now, catalogue }: SubscriptionContext): SubscriptionEvent[] {
  if (state.status === 'active') {
    throw new SubscriptionError('ALREADY_SUBSCRIBED', `account ${data.accountId} is already subscribed to ${state.planId}`, { field: 'accountId', accountId: data.accountId });
  }
  const plan = offered(planOf(catalogue, data.planId));
  if (!isValidZone(data.zone)) throw new SubscriptionError('INVALID_TIME_ZONE', `not an IANA time zone: ${JSON.stringify(data.zone)}`, { field: 'zone', zone: data.zone });
  const at = data.at === undefined ? now : parseInstant(data.at);
  if (!at) throw new SubscriptionError('INVALID_ANCHOR', `not an ISO instant with an offset: ${JSON.stringify(data.at)}`, { field: 'at' });
  if (at.getTime() > now.getTime()) throw new SubscriptionError('INVALID_ANCHOR', `the anchor ${data.at} is in the future`, { field: 'at' });
  const anchor = { at: at.toISOString(), zone: canonicalZone(data.zone) };
  return [
    { type: 'Subscribed', data: { accountId: data.accountId, planId: plan.id, zone: anchor.zone, anchor: anchor.at } },
    // A back-dated anchor starts the cycle containing now (only: nothing was used in the cycles before it).
    cycleStarted(data.accountId, anchor, plan, catalogue, now),
  ];
}

function changePlan({ data }: ChangePlan, state: SubscriptionState, { now, catalogue }: SubscriptionContext): SubscriptionEvent[] {
  const current = active(state, data.accountId);
  const from = planOf(catalogue, current.planId, 'currentPlanId');
  const to = planOf(catalogue, data.planId);
  if (to.id === from.id) {
    // Asking for the plan already held undoes a scheduled change; with nothing scheduled it changes nothing: a PUT
    // retried after it succeeded (its answer lost) is that PUT again, not an error the integration must tell apart.
    if (!current.pending) return [];
    return [{ type: 'PlanChangeCancelled', data: { accountId: data.accountId, planId: from.id, cancelledToPlanId: current.pending.toPlanId, kind: current.pending.kind } }];
  }
  offered(to);
  if (to.rank > from.rank) return changeNow(current, from, to, 'upgrade', catalogue, now);
  return schedule(current, from, to.id, 'downgrade', now);
}

/**
 * An upgrade or a termination: `to` from now on, under a new anchor at now, its first cycle started at once. Cycles of
 * the old anchor already due that the scheduler has not started (it is behind, or down) are started first, on the plan
 * left: the new anchor would leave them unstarted for good, and the new plan's allowance pay for their usage.
 */
function changeNow(current: Active, from: Plan, to: Plan, kind: 'upgrade' | 'terminate', catalogue: Catalogue, now: Date): SubscriptionEvent[] {
  const oldAnchor = anchorOf(current);
  const due = dueCycles(current, now);
  const missed = due.map((index) => cycleStartedAt(current.accountId, oldAnchor, from, catalogue, index));
  // Now, but never before the cycle already started (a scheduler whose clock is ahead, or that ticked while this
  // request waited for the row): the ledger refuses a cycle that starts before its current one.
  const started = cycleStart(oldAnchor, Math.max(current.lastCycleIndex, ...due));
  const anchor = { at: new Date(Math.max(now.getTime(), started.getTime())).toISOString(), zone: current.zone };
  return [
    ...missed,
    { type: 'PlanChanged', data: { accountId: current.accountId, fromPlanId: from.id, toPlanId: to.id, kind, anchor: anchor.at } },
    cycleStarted(current.accountId, anchor, to, catalogue, now),
  ];
}

function cancel({ data }: Cancel, state: SubscriptionState, { now, catalogue }: SubscriptionContext): SubscriptionEvent[] {
  const current = active(state, data.accountId);
  const fallback = planOf(catalogue, catalogue.fallbackPlanId, 'fallbackPlanId');
  // Already on the fallback plan (a cancel retried after it took effect): nothing to cancel, nothing changes.
  if (current.planId === fallback.id) return [];
  const from = planOf(catalogue, current.planId, 'currentPlanId');
  // At once: what was paid for no longer is; the allowance under way expires when the fallback plan's cycle starts.
  if (data.immediately) return changeNow(current, from, fallback, 'terminate', catalogue, now);
  return schedule(current, from, fallback.id, 'cancel', now);
}

function schedule(current: Active, from: Plan, toPlanId: string, kind: PendingPlanChange['kind'], now: Date): SubscriptionEvent[] {
  const pending = current.pending;
  if (pending && pending.toPlanId === toPlanId && pending.kind === kind) return []; // already scheduled: a retried command
  // At the end of the cycle containing now, but never at a start already past: a scheduler whose clock is ahead (or
  // that ticked while this request waited for the row) may have started the next cycle already; a change effective
  // at that start would be applied at once with no cycle of its own.
  const anchor = anchorOf(current);
  const cycle = Math.max(cycleAt(anchor, now).index, current.lastCycleIndex);
  const effectiveAt = cycleStart(anchor, paidThrough(current, from, cycle) + 1);
  return [{ type: 'PlanChangeScheduled', data: { accountId: current.accountId, fromPlanId: current.planId, toPlanId, effectiveAt, kind } }];
}

/**
 * The last cycle paid for when `cycle` is under way: that cycle on a monthly plan; on a yearly plan the last of the
 * paid year it is in (years of 12 cycles from the first cycle on the plan), so leaving a yearly plan keeps it, and
 * its monthly allowance, until the year paid for ends.
 */
function paidThrough(current: Active, plan: Plan, cycle: number): number {
  if (plan.interval !== 'yearly') return cycle;
  const year = Math.floor(Math.max(0, cycle - current.planFromCycle) / CYCLES_A_YEAR);
  return current.planFromCycle + (year + 1) * CYCLES_A_YEAR - 1;
}
const CYCLES_A_YEAR = 12;

/**
 * At most this many cycles a Tick starts at once: the cycles missed while the scheduler was down (each with its own
 * allowance), up to the one containing now. Older ones than that are left out.
 */
export const CATCH_UP_CYCLES = 12;

/** The indexes of the cycles due since the last one started, in order, up to the one containing now (CATCH_UP_CYCLES at most). */
function dueCycles(current: Active, now: Date): number[] {
  const last = cycleAt(anchorOf(current), now).index;
  const first = Math.max(current.lastCycleIndex + 1, last - CATCH_UP_CYCLES + 1);
  return Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => first + i);
}

/**
 * Every cycle due since the last one started, in order, up to the one containing now (at most CATCH_UP_CYCLES), and a
 * scheduled change at the cycle it takes effect. A cycle missed while the scheduler was down is started late with its
 * own allowance: the ledger defers the usage of the renewal gap to the next allowance, which pays it first and then
 * expires with its period; starting only the cycle containing now made the next cycle's allowance pay for the missed
 * one's usage, and the subscriber lost a month's allowance.
 */
function tick({ data }: Tick, state: SubscriptionState, { now, catalogue }: SubscriptionContext): SubscriptionEvent[] {
  const current = active(state, data.accountId);
  const anchor = anchorOf(current);
  const events: SubscriptionEvent[] = [];
  let planId = current.planId;
  const pending = current.pending && current.pending.effectiveAt.getTime() <= now.getTime() ? current.pending : null;
  const applyChange = () => {
    if (!pending || planId !== current.planId) return;
    planId = planOf(catalogue, pending.toPlanId).id;
    events.push({ type: 'PlanChanged', data: { accountId: current.accountId, fromPlanId: current.planId, toPlanId: planId, kind: pending.kind, anchor: current.anchor } });
  };
  for (const index of dueCycles(current, now)) {
    if (pending && pending.effectiveAt.getTime() <= cycleStart(anchor, index).getTime()) applyChange();
    events.push(cycleStartedAt(current.accountId, anchor, planOf(catalogue, planId, 'currentPlanId'), catalogue, index));
  }
  applyChange(); // due, with no cycle of its own started here (none was due)
  return events;
}

/**
 * A change or cancel decided while a scheduled change is already due, which the scheduler has not applied yet (it is
 * behind, or down): first what its Tick would do (the cycles due, the change at its cycle), then the command on that
 * state. Deciding it on the state as stored would replace the due change with one at the next cycle end, and the Tick
 * would renew the cycle under way on the plan the account had left.
 */
function afterDueChange(
  command: ChangePlan | Cancel,
  state: SubscriptionState,
  context: SubscriptionContext,
  decideOn: (state: SubscriptionState) => SubscriptionEvent[],
): SubscriptionEvent[] {
  const due = state.status === 'active' && state.pending !== null && state.pending.effectiveAt.getTime() <= context.now.getTime();
  if (!due) return decideOn(state);
  const applied = tick({ type: 'Tick', data: { accountId: command.data.accountId } }, state, context);
  return [...applied, ...decideOn(applied.reduce(evolve, state))];
}

export function decide(command: SubscriptionCommand, state: SubscriptionState, context: SubscriptionContext): SubscriptionEvent[] {
  switch (command.type) {
    case 'Subscribe':
      return subscribe(command, state, context);
    case 'ChangePlan':
      return afterDueChange(command, state, context, (current) => changePlan(command, current, context));
    case 'Cancel':
      return afterDueChange(command, state, context, (current) => cancel(command, current, context));
    case 'Tick':
      return tick(command, state, context);
    default: {
      const unknown: never = command;
      throw new Error(`unknown subscription command ${JSON.stringify(unknown)}`);
    }
  }
}

export function evolve(state: SubscriptionState, event: SubscriptionEvent): SubscriptionState {
  switch (event.type) {
    case 'Subscribed': {
      const { accountId, planId, zone, anchor } = event.data;
      return { status: 'active', accountId, planId, zone, anchor, lastCycleIndex: -1, planFromCycle: 0, pending: null };
    }
    case 'CycleStarted':
      return state.status === 'active' ? { ...state, lastCycleIndex: event.data.cycleIndex } : state;
    case 'PlanChangeScheduled': {
      const { toPlanId, kind, effectiveAt } = event.data;
      return state.status === 'active' ? { ...state, pending: { toPlanId, kind, effectiveAt } } : state;
    }
    case 'PlanChangeCancelled':
      return state.status === 'active' ? { ...state, pending: null } : state;
    case 'PlanChanged': {
      if (state.status !== 'active') return state;
      const { toPlanId, anchor, kind } = event.data;
      // Any change supersedes a scheduled one; a new anchor restarts cycle numbering. An upgrade (or a termination) starts the new plan
      // with the cycle at its anchor, cycle 0 (its anchor may be the old one: an instance whose clock is behind anchors
      // it at the start of the cycle already started). A scheduled change keeps the anchor: the new plan starts with the
      // cycle starting when it took effect.
      const lastCycleIndex = anchor === state.anchor ? state.lastCycleIndex : -1;
      if (kind === 'upgrade' || kind === 'terminate') return { ...state, planId: toPlanId, anchor, pending: null, lastCycleIndex, planFromCycle: 0 };
      const from = state.pending ? cycleAt(anchorOf(state), state.pending.effectiveAt).index : state.lastCycleIndex + 1;
      return { ...state, planId: toPlanId, anchor, pending: null, lastCycleIndex, planFromCycle: from };
    }
    default: {
      const unknown: never = event;
      throw new Error(`unknown subscription event ${JSON.stringify(unknown)}`);
    }
  }
}

/** When the next Tick has work: the next cycle start or a scheduled change, whichever is first; null when never. */
export function nextDueAt(state: SubscriptionState): Date | null {
  if (state.status !== 'active') return null;
  const nextCycle = cycleStart(anchorOf(state), state.lastCycleIndex + 1);
  const change = state.pending?.effectiveAt;
  return change && change.getTime() < nextCycle.getTime() ? change : nextCycle;
}

/** The decider as one value, in the emmett shape (the same `Decider` as the account's). */
export const subscriptionDecider: Decider<SubscriptionState, SubscriptionCommand, SubscriptionEvent, SubscriptionContext> = {
  decide,
  evolve,
  initialState: initialState(),
};

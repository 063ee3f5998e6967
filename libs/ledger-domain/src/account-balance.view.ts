import type { Micro } from '@tally/money';
import type { AccountEvent, BucketKind } from './account.events';
import { housekeeping } from './account.decider';
import { type AccountState, type Hold, available, evolve, held, isDue } from './account.state';

export interface BalanceView {
  /** What a new action could spend now. */
  readonly available: Micro;
  readonly byKind: Readonly<Record<BucketKind, Micro>>;
  /** Reserved by open holds (already out of `available`). */
  readonly held: Micro;
  /** Carried usage the next grant (or credits a hold gives back) pays first. */
  readonly overdraft: Micro;
  /** This cycle's allocation; 0 without a cycle. */
  readonly allocation: Micro;
  readonly usedThisCycle: Micro;
  readonly cycleId: string | null;
  readonly cycleEnd: string | null;
  readonly unlimited: boolean;
  readonly planId: string | null;
}

/**
 * The balance as of `now`: buckets and holds due by then are left out even if the housekeeping events
 * were not recorded yet, so a read never shows credits that already expired.
 */
export function balanceView(state: AccountState, now: Date): BalanceView {
  const run = {
    state,
    now,
    at: now.toISOString(),
    emit(event: AccountEvent) {
      this.state = evolve(this.state, event);
    },
  };
  housekeeping(run);
  return balanceOf(run.state);
}

/**
 * The hold under this id if it still reserves credits at `now`: placed, neither settled nor released, and not due
 * (a due hold is released by the account's next decision, and balanceView already leaves it out).
 */
export function openHold(state: AccountState, holdId: string, now: Date): Hold | undefined {
  const hold = state.holds.get(holdId);
  return hold && !isDue(hold.expiresAt, now) ? hold : undefined;
}

/**
 * The balance exactly as the events so far leave it, with no housekeeping: what the ledger stamps on each event
 * as `balanceAfter`, so that every event's balance differs from the one before by that event alone (the
 * transaction history adds up row by row). After a whole decision it equals balanceView at the decision's time.
 */
export function balanceOf(current: AccountState): BalanceView {
  const byKind: Record<BucketKind, Micro> = { allowance: 0n, promotional: 0n, purchased: 0n };
  for (const bucket of current.buckets) byKind[bucket.kind] += bucket.amount;
  return {
    available: available(current),
    byKind,
    held: held(current),
    overdraft: current.overdraft,
    allocation: current.cycle?.allocation ?? 0n,
    usedThisCycle: current.usedThisCycle,
    cycleId: current.cycle?.cycleId ?? null,
    cycleEnd: current.cycle?.periodEnd ?? null,
    unlimited: current.plan.unlimited,
    planId: current.plan.planId ?? null,
  };
}

import { nextDueAt, type SubscriptionState } from '@tally/subscription-domain';
import { SubscriptionEntity } from '../database/subscription.entity';

/** The decider's state from its persisted row (a missing row is the decider's initial state). */
export function stateFromRow(row: SubscriptionEntity | null): SubscriptionState {
  if (!row) return { status: 'none' };
  return {
    status: 'active',
    accountId: row.accountId,
    planId: row.planId,
    zone: row.timeZone,
    anchor: row.anchor.toISOString(),
    lastCycleIndex: row.lastCycleIndex,
    planFromCycle: row.planFromCycle,
    pending:
      row.pendingPlanId && row.pendingKind && row.pendingEffectiveAt
        ? { toPlanId: row.pendingPlanId, kind: row.pendingKind, effectiveAt: row.pendingEffectiveAt }
        : null,
  };
}

/** The row to save for an active state, with the instant the scheduler next has work for it. */
export function rowFromState(state: Extract<SubscriptionState, { status: 'active' }>, existing: SubscriptionEntity | null): SubscriptionEntity {
  const row = existing ?? new SubscriptionEntity();
  row.accountId = state.accountId;
  row.planId = state.planId;
  row.timeZone = state.zone;
  row.anchor = new Date(state.anchor);
  row.lastCycleIndex = state.lastCycleIndex;
  row.planFromCycle = state.planFromCycle;
  row.pendingPlanId = state.pending?.toPlanId ?? null;
  row.pendingKind = state.pending?.kind ?? null;
  row.pendingEffectiveAt = state.pending?.effectiveAt ?? null;
  row.nextDueAt = nextDueAt(state);
  // Saved by a tick or a command that worked: whatever parked it is over.
  row.parkedAt = null;
  row.parkedReason = null;
  return row;
}

import {
  CycleStartedV1,
  PlanChangedV1,
  SUBSCRIPTION_CYCLE_STARTED,
  SUBSCRIPTION_PLAN_CHANGED,
  validateInto,
  type EnvelopeOf,
} from '@tally/contracts';
import { formatCredits } from '@tally/money';
import { boundedId, type Catalogue, type SubscriptionEvent } from '@tally/subscription-domain';

/** The actor on the messages the billing calendar causes by itself (renewals, scheduled changes taking effect). */
export const SCHEDULER_ACTOR = 'system:scheduler';

export type SubscriptionEnvelope =
  | EnvelopeOf<'CycleStarted', CycleStartedV1>
  | EnvelopeOf<'PlanChanged', PlanChangedV1>;

/**
 * The decider's events that other services act on, as subscription.events.v1 envelopes (validated against the
 * contract here, so a bad message fails the transaction instead of reaching the ledger). Subscribed,
 * PlanChangeScheduled and PlanChangeCancelled stay inside this service. `actor` (the audit trail): the API key
 * that asked for the change, or SCHEDULER_ACTOR for what the calendar does (renewals, changes taking effect).
 */
export function toEnvelopes(events: SubscriptionEvent[], catalogue: Catalogue, now: Date, actor?: string): SubscriptionEnvelope[] {
  const occurredAt = now.toISOString();
  const audit = actor === undefined ? {} : { actor };
  return events.flatMap((event): SubscriptionEnvelope[] => {
    switch (event.type) {
      case 'CycleStarted': {
        const d = event.data;
        const data = validateInto(CycleStartedV1, {
          cycleId: d.cycleId,
          planId: d.planId,
          periodStart: d.periodStart.toISOString(),
          periodEnd: d.periodEnd.toISOString(),
          allocation: formatCredits(d.allocation),
          unlimited: d.unlimited,
          thresholds: [...d.thresholds],
          overdraftPolicy: d.overdraftPolicy,
        });
        return [{ id: d.cycleId, ...SUBSCRIPTION_CYCLE_STARTED, accountId: d.accountId, occurredAt, ...audit, data: { ...data } }];
      }
      case 'PlanChanged': {
        const d = event.data;
        const plan = catalogue.plans.get(d.toPlanId);
        if (!plan) throw new Error(`plan ${d.toPlanId} vanished from the catalogue`);
        const changeId = planChangeId(d.accountId, occurredAt, d.kind, d.toPlanId);
        const data = validateInto(PlanChangedV1, {
          changeId,
          planId: plan.id,
          unlimited: plan.unlimited,
          thresholds: [...plan.alertThresholds],
          overdraftPolicy: plan.overdraftPolicy,
        });
        return [{ id: changeId, ...SUBSCRIPTION_PLAN_CHANGED, accountId: d.accountId, occurredAt, ...audit, data: { ...data } }];
      }
      case 'Subscribed':
      case 'PlanChangeScheduled':
      case 'PlanChangeCancelled':
        return [];
      default: {
        const unknown: never = event;
        throw new Error(`unknown subscription event ${JSON.stringify(unknown)}`);
      }
    }
  });
}

/**
 * The change instant makes the id unique; the outbox row keeps it stable across re-publishes. Readable when it
 * fits; for long account and plan ids (up to 128 + 63 characters) a digest of the same parts (boundedId).
 */
export function planChangeId(accountId: string, occurredAt: string, kind: string, planId: string): string {
  return boundedId(`${accountId}:${occurredAt}:${kind}:${planId}`, accountId, 'change');
}

import type { Micro } from '@tally/money';
import type { OverdraftPolicy } from './catalogue.model';

export type Subscribed = {
  type: 'Subscribed';
  data: { accountId: string; planId: string; zone: string; /** ISO instant (UTC) */ anchor: string };
};

export type CycleStarted = {
  type: 'CycleStarted';
  data: {
    accountId: string;
    /** `${accountId}:${anchor}:${cycleIndex}:${planId}`: the ledger's idempotency key for the grant. */
    cycleId: string;
    cycleIndex: number;
    planId: string;
    catalogueVersion: string;
    periodStart: Date;
    periodEnd: Date;
    /** Micro-credits granted for this cycle; they expire at periodEnd. */
    allocation: Micro;
    unlimited: boolean;
    thresholds: readonly number[];
    overdraftPolicy: OverdraftPolicy;
  };
};

export type PlanChangeScheduled = {
  type: 'PlanChangeScheduled';
  data: { accountId: string; fromPlanId: string; toPlanId: string; effectiveAt: Date; kind: 'downgrade' | 'cancel' };
};

export type PlanChangeCancelled = {
  type: 'PlanChangeCancelled';
  data: { accountId: string; planId: string; cancelledToPlanId: string; kind: 'downgrade' | 'cancel' };
};

export type PlanChanged = {
  type: 'PlanChanged';
  data: {
    accountId: string;
    fromPlanId: string;
    toPlanId: string;
    /** `terminate`: a cancel that takes effect at once (Cancel with `immediately`); the others as scheduled or asked. */
    kind: 'upgrade' | 'downgrade' | 'cancel' | 'terminate';
    /** The billing anchor from now on: a new one (the change instant) for an upgrade or a termination, unchanged otherwise. */
    anchor: string;
  };
};

export type SubscriptionEvent = Subscribed | CycleStarted | PlanChangeScheduled | PlanChangeCancelled | PlanChanged;

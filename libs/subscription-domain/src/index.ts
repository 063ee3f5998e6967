export * from './subscription.errors';
export * from './catalogue.model';
export { parseCatalogue } from './catalogue.parser';
export { canonicalZone, cycleStart, cycleAt, isValidZone, type BillingAnchor, type BillingCycle } from './billing-calendar.model';
export type * from './subscription.commands';
export type * from './subscription.events';
export {
  decide,
  evolve,
  initialState,
  nextDueAt,
  subscriptionDecider,
  type SubscriptionContext,
  type SubscriptionState,
  type PendingPlanChange,
} from './subscription.decider';
export { boundedId } from './bounded-id.model';

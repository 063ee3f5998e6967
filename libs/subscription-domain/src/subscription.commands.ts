export type Subscribe = {
  type: 'Subscribe';
  /** `at`: the anchor instant (ISO with offset); defaults to now, may be in the past (imported subscriptions). */
  data: { accountId: string; planId: string; zone: string; at?: string };
};
export type ChangePlan = { type: 'ChangePlan'; data: { accountId: string; planId: string } };
/**
 * `immediately`: end the plan now (a refund, a chargeback, fraud), not at the cycle or paid year's end: the account
 * moves to the fallback plan with a new anchor, and its current allowance expires at once.
 */
export type Cancel = { type: 'Cancel'; data: { accountId: string; immediately?: boolean } };
/** From the scheduler: apply due plan changes and start the cycle due at `now`. */
export type Tick = { type: 'Tick'; data: { accountId: string } };

export type SubscriptionCommand = Subscribe | ChangePlan | Cancel | Tick;

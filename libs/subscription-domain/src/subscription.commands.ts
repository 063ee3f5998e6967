export type Subscribe = {
  type: 'Subscribe';
  /** `at`: the anchor instant (ISO with offset); defaults to now, may be in the past (imported subscriptions). */
  data: { accountId: string; planId: string; zone: string; at?: string };
};
export type ChangePlan = { type: 'ChangePlan'; data: { accountId: string; planId: string } };
export type Cancel = { type: 'Cancel'; data: { accountId: string } };
/** From the scheduler: apply due plan changes and start the cycle due at `now`. */
export type Tick = { type: 'Tick'; data: { accountId: string } };

export type SubscriptionCommand = Subscribe | ChangePlan | Cancel | Tick;

export * from './account.events';
export * from './account.commands';
export * from './account.errors';
export * from './account.idempotency';
export {
  type AccountState,
  type Bucket,
  type Cycle,
  type Hold,
  type PlanTerms,
  available,
  deductionOrder,
  evolve,
  fold,
  held,
  initialState,
  isBelowThreshold,
} from './account.state';
export { allowanceGrantId, decide } from './account.decide';
export * from './account.balance-view';
export * from './account.decider';

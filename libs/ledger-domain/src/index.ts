export * from './account.events';
export * from './account.commands';
export * from './account.errors';
export * from './account-idempotency.model';
export * from './account-memory.model';
export {
  type AccountState,
  type Bucket,
  type Cycle,
  type DebitRecord,
  type GrantRecord,
  type Hold,
  type PlanTerms,
  available,
  debitLines,
  debitShares,
  deductionOrder,
  evolve,
  fold,
  held,
  initialState,
  isBelowThreshold,
  isDue,
  remembered,
  rememberedGrant,
} from './account.state';
export { type AccountDecider, type Decision, accountDecider, allowanceGrantId, decide, decideWithStates, betweenCycles, cannotCover } from './account.decider';
export * from './account-balance.view';

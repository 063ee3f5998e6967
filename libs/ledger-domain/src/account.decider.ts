import type { Decider } from '@tally/decider';
import { MAX_AMOUNT_MICROS, MAX_BALANCE_MICROS, formatCredits, maxMicro, minMicro, type Micro } from '@tally/money';
import type {
  AccountCommand,
  ChangePlan,
  Ctx,
  ExpireCredits,
  GrantCredits,
  PlaceHold,
  RecordUsage,
  RefundUsage,
  ReleaseHold,
  StartCycle,
  VoidGrant,
} from './account.commands';
import { MAX_REASON_LENGTH, reasonLength } from './account.commands';
import type { AccountEvent, BucketKind, BucketShare, ModelShare } from './account.events';
import { AccountError, AccountErrorCode, CycleRenewalPendingError, InsufficientCreditsError } from './account.errors';
import {
  cycleFingerprint,
  grantFingerprint,
  grantFingerprintBeforeReasons,
  holdFingerprint,
  idempotencyKey,
  type IdempotencyScope,
  planChangeFingerprint,
  refundFingerprint,
  usageFingerprint,
  voidFingerprint,
} from './account-idempotency.model';
import {
  type AccountState,
  type Bucket,
  type Hold,
  type GrantRecord,
  assertNever,
  available,
  debitLines,
  debitShares,
  deductionOrder,
  evolve,
  held,
  initialState,
  isBelowThreshold,
  isDue,
  refundedTail,
  remembered,
  thresholdLevel,
} from './account.state';
import { debtPieces } from './account-debt.model';

/**
 * decide(command, state, ctx) → events. Every command goes through the same steps:
 * validate the input → idempotency (a repeat is a no-op, a conflicting repeat throws) → open the account if
 * unseen → housekeeping due at ctx.now (expired holds, then expired buckets) → the command's own events.
 */
export function decide(command: AccountCommand, state: AccountState, ctx: Ctx): AccountEvent[] {
  return decideWithStates(command, state, ctx).events;
}

/** The events `decide` returns, with the account's state after each of them (what folding them with evolve gives). */
export interface Decision {
  events: AccountEvent[];
  states: AccountState[];
}

/**
 * `decide`, plus the state after each event, which the decider computes anyway (each event is evolved before the
 * next is decided): a caller that needs them (the ledger snapshots the balance after every event) need not evolve
 * the events a second time.
 */
export function decideWithStates(command: AccountCommand, state: AccountState, ctx: Ctx): Decision {
  switch (command.type) {
    case 'GrantCredits':
      return grantCredits(command, state, ctx);
    case 'RecordUsage':
      return recordUsage(command, state, ctx);
    case 'StartCycle':
      return startCycle(command, state, ctx);
    case 'ChangePlan':
      return changePlan(command, state, ctx);
    case 'PlaceHold':
      return placeHold(command, state, ctx);
    case 'ReleaseHold':
      return releaseHold(command, state, ctx);
    case 'ExpireCredits':
      return expireCredits(command, state, ctx);
    case 'RefundUsage':
      return refundUsage(command, state, ctx);
    case 'VoidGrant':
      return voidGrant(command, state, ctx);
    default:
      return assertNever(command);
  }
}

function grantCredits(command: GrantCredits, state: AccountState, ctx: Ctx): Decision {
  requirePositive(command.amount, 'amount');
  requireWithinAmountBound(command.amount, 'amount');
  if (command.expiresAt !== undefined) requireInstant(command.expiresAt, 'expiresAt');
  // A state snapshotted before reasons counted (version 6) remembers the grant without its reason: still a repeat.
  if (isRepeat(state, 'grant', command.grantId, grantFingerprint(command), grantFingerprintBeforeReasons(command))) return noEvents();

  const run = begin(command, state, ctx);
  // A grant that arrives already expired is recorded and expired at once; credits never spendable settle no debt.
  const expired = command.expiresAt !== undefined && isDue(command.expiresAt, ctx.now);
  grant(run, {
    grantId: command.grantId,
    kind: command.kind,
    amount: command.amount,
    source: command.source,
    ...(command.expiresAt !== undefined && { expiresAt: command.expiresAt }),
    ...(command.paymentReference !== undefined && { paymentReference: command.paymentReference }),
    ...(command.reason !== undefined && { reason: command.reason }),
  }, { settlesOverdraft: !expired });
  expireDueBuckets(run); // a grant that arrives already expired
  return run;
}

function recordUsage(command: RecordUsage, state: AccountState, ctx: Ctx): Decision {
  requireNonNegative(command.amount, 'amount');
  requireWithinAmountBound(command.amount, 'amount');
  if (isRepeat(state, 'usage', command.usageId, usageFingerprint(command))) return noEvents();

  const run = begin(command, state, ctx);
  const hold = command.holdId !== undefined ? run.state.holds.get(command.holdId) : undefined;
  if (hold) {
    // Give the reservations back first, then debit the actual amount in deduction order.
    run.emit({
      type: 'HoldSettled',
      data: {
        holdId: hold.holdId,
        usageId: command.usageId,
        heldAmount: hold.amount,
        settledAmount: command.amount,
        releasedAmount: hold.amount > command.amount ? hold.amount - command.amount : 0n,
      },
    });
    // What went back to an allowance that has ended meanwhile (a renewal closed it, or its date passed) expires now,
    // before the debit could take it: the previous allowance never pays for the next cycle. (A voided grant's or an
    // expired promotion's reservation may still be spent by the usage settling it: those expire after the debit.)
    expireDueBuckets(run, (bucket) => bucket.kind === 'allowance');
  }

  const unlimited = run.state.plan.unlimited;
  // Between the end of a cycle with an allowance and the next CycleStarted (the scheduler's wake-up, its outbox and the
  // consumer take under a second; an outage of them longer) the usage belongs to the next cycle: it is deferred as overdraft,
  // which the next allowance pays first (a cancelled plan's fallback cycle too), rather than take purchased or
  // promotional credits that allowance would have spared. Owed under either overdraft policy.
  const deferred = !unlimited && betweenCycles(run.state, run.now);
  const { perBucket, covered } = unlimited ? { perBucket: [], covered: command.amount } : deferred ? { perBucket: [], covered: 0n } : allocate(run.state, command.amount);
  const overdraft = command.amount - covered;
  const carried = deferred || run.state.plan.overdraftPolicy !== 'write-off';
  requireWithinBalanceBound('usedThisCycle', run.state.usedThisCycle + command.amount);
  if (overdraft > 0n && carried) requireWithinBalanceBound('overdraft', run.state.overdraft + overdraft);
  run.emit({
    type: 'UsageDebited',
    data: {
      usageId: command.usageId,
      amount: command.amount,
      perBucket,
      overdraft,
      pricing: command.pricing,
      feature: command.feature,
      models: command.models,
      occurredAt: command.occurredAt,
      debitedAt: run.at,
      ...(hold && { holdId: hold.holdId }),
      ...(command.metadata && Object.keys(command.metadata).length > 0 && { metadata: command.metadata }),
    },
  });
  if (overdraft > 0n) {
    if (!carried) {
      run.emit({ type: 'OverdraftWrittenOff', data: { usageId: command.usageId, amount: overdraft } });
    } else {
      run.emit({
        type: 'OverdraftIncurred',
        data: { usageId: command.usageId, amount: overdraft, total: run.state.overdraft + overdraft },
      });
    }
  }
  expireDueBuckets(run); // reservations given back to buckets that expired while held
  if (hold && hold.amount > command.amount) repayFromCredits(run, hold.perBucket, hold.amount - command.amount);
  if (!deferred) announceLowBalance(run, command.usageId);
  return run;
}

/**
 * The account's cycle, one with an allowance, has ended and the next has not started. Usage then is deferred to the
 * next allowance (recordUsage); a request the account cannot cover then waits for its renewal (CYCLE_RENEWAL_PENDING,
 * retryable) rather than being refused for insufficient credits: only the renewal can say whether the account can pay
 * (a subscriber would otherwise be told to buy a pack), and one is always coming (a cancelled plan's fallback too).
 */
export function betweenCycles(state: AccountState, now: Date): boolean {
  const { cycle } = state;
  return cycle !== undefined && cycle.allocation > 0n && now.getTime() >= Date.parse(cycle.periodEnd);
}

/**
 * The refusal of a request for `required` credits the account's `available` cannot cover: it waits for the renewal
 * between cycles (see betweenCycles), else insufficient credits. A hold (placeHold) and a plain authorization (the
 * ledger's handler, from the account's balance) are refused by this one rule.
 */
export function cannotCover(state: AccountState, required: Micro, available: Micro, now: Date): CycleRenewalPendingError | InsufficientCreditsError {
  if (!betweenCycles(state, now)) return new InsufficientCreditsError(required, available);
  const cycle = state.cycle as NonNullable<AccountState['cycle']>;
  return new CycleRenewalPendingError(cycle.cycleId, cycle.periodEnd);
}

function startCycle(command: StartCycle, state: AccountState, ctx: Ctx): Decision {
  requireNonNegative(command.allocation, 'allocation');
  requireWithinAmountBound(command.allocation, 'allocation');
  const start = requireInstant(command.periodStart, 'periodStart');
  const end = requireInstant(command.periodEnd, 'periodEnd');
  if (end <= start) throw invalidCommand('periodEnd must be after periodStart', { periodStart: command.periodStart, periodEnd: command.periodEnd });
  requireThresholds(command.thresholds);
  if (isRepeat(state, 'cycle', command.cycleId, cycleFingerprint(command))) return noEvents();
  // A cycle older than the current one (a stale message, e.g. a dead letter replayed after later cycles) would expire
  // the current allowance and put the account back in a cycle that is over.
  const current = state.cycle;
  if (current && start < Date.parse(current.periodStart)) {
    throw invalidCommand(`cycle ${command.cycleId} starts before the current cycle ${current.cycleId}`, {
      cycleId: command.cycleId, periodStart: command.periodStart, currentCycleId: current.cycleId, currentPeriodStart: current.periodStart,
    });
  }

  const run = begin(command, state, ctx);
  const owed = run.state.overdraft;
  for (const bucket of run.state.buckets) {
    if (bucket.kind === 'allowance' && bucket.amount > 0n) {
      run.emit({
        type: 'CreditsExpired',
        data: { bucketId: bucket.bucketId, kind: bucket.kind, amount: bucket.amount, reason: 'cycle-reset', expiredAt: run.at },
      });
    }
  }
  run.emit({
    type: 'CycleStarted',
    data: {
      cycleId: command.cycleId,
      planId: command.planId,
      periodStart: command.periodStart,
      periodEnd: command.periodEnd,
      allocation: command.allocation,
      unlimited: command.unlimited,
      thresholds: command.thresholds,
      overdraftPolicy: command.overdraftPolicy,
    },
  });
  // A renewal is never refused: refused, the account would stay between cycles (its usage deferred as overdraft, its
  // purchased credits never spent) and every later renewal would be refused the same way. An account so full that the
  // whole allowance would take it past MAX_BALANCE_MICROS gets what fits (what pays its overdraft fits always).
  const fits = maxMicro(0n, MAX_BALANCE_MICROS - available(run.state) - held(run.state)) + run.state.overdraft;
  const allowance = minMicro(command.allocation, fits);
  if (allowance > 0n) {
    grant(run, {
      grantId: allowanceGrantId(command.cycleId),
      kind: 'allowance',
      amount: allowance,
      expiresAt: command.periodEnd,
      source: `plan:${command.planId}`,
    });
  }
  expireDueBuckets(run);
  // What the account owed at the renewal (usage deferred in the renewal gap, mostly) belongs to this cycle: what its
  // allowance could not pay, the account's other credits pay now, in deduction order, and what is left is announced
  // as low or depleted, as it would have been had that usage come after the renewal. (Past this cycle's end already,
  // a late renewal, the overdraft waits for the next allowance: recordUsage.)
  if (owed > 0n && !betweenCycles(run.state, run.now)) {
    payFromBuckets(run, run.state.overdraft);
    announceLowBalance(run);
  }
  return run;
}

function changePlan(command: ChangePlan, state: AccountState, ctx: Ctx): Decision {
  requireThresholds(command.thresholds);
  if (isRepeat(state, 'change', command.changeId, planChangeFingerprint(command))) return noEvents();

  const run = begin(command, state, ctx);
  run.emit({
    type: 'PlanChanged',
    data: {
      changeId: command.changeId,
      planId: command.planId,
      unlimited: command.unlimited,
      thresholds: command.thresholds,
      overdraftPolicy: command.overdraftPolicy,
    },
  });
  return run;
}

function placeHold(command: PlaceHold, state: AccountState, ctx: Ctx): Decision {
  requirePositive(command.amount, 'amount');
  requireWithinAmountBound(command.amount, 'amount');
  const expiresAt = requireInstant(command.expiresAt, 'expiresAt');
  if (isRepeat(state, 'hold', command.holdId, holdFingerprint(command))) return noEvents();
  // A hold already due would be placed and expired at once: the balance would never show it, the history would.
  if (expiresAt <= ctx.now.getTime()) throw invalidCommand('expiresAt must be after now', { expiresAt: command.expiresAt });

  // An unlimited plan reserves nothing: there is nothing to hold, release or settle, and no balance moves. Nor is
  // what fell due decided here: the hold's key is not remembered (no HoldPlaced), so a retry would decide it again
  // and, with something else due by then, other events under the same key-derived ids (the store refuses those).
  if (state.plan.unlimited) return noEvents();
  const run = begin(command, state, ctx);
  const allocation = allocate(run.state, command.amount);
  if (allocation.covered < command.amount) {
    throw cannotCover(run.state, command.amount, allocation.covered, run.now);
  }
  run.emit({
    type: 'HoldPlaced',
    data: { holdId: command.holdId, amount: command.amount, perBucket: allocation.perBucket, expiresAt: command.expiresAt },
  });
  announceThresholds(run);
  return run;
}

function releaseHold(command: ReleaseHold, state: AccountState, ctx: Ctx): Decision {
  // A hold resolves at most once; unknown and already resolved holds are both no-ops.
  const open = state.holds.get(command.holdId);
  if (!open) return noEvents();
  // Expiring a hold before its time is a no-op: so every decision an expiry makes releases that very hold, and
  // its idempotency key (`expire:<holdId>`) is used by at most one decision that records events.
  if (command.reason === 'expired' && !isDue(open.expiresAt, ctx.now)) return noEvents();

  const run = begin(command, state, ctx);
  const hold = run.state.holds.get(command.holdId); // housekeeping may just have expired it
  if (hold) {
    run.emit({ type: 'HoldReleased', data: { holdId: hold.holdId, amount: hold.amount, reason: command.reason } });
    expireDueBuckets(run);
    repayFromCredits(run, hold.perBucket, hold.amount);
  }
  return run;
}

function expireCredits(command: ExpireCredits, state: AccountState, ctx: Ctx): Decision {
  if (!state.exists) return noEvents(); // nothing to expire: housekeeping does not open an account
  if (command.bucketId !== undefined) {
    const bucket = state.buckets.find((b) => b.bucketId === command.bucketId);
    if (!bucket || bucket.amount <= 0n || bucket.expiresAt === undefined || !isDue(bucket.expiresAt, ctx.now)) return noEvents();
  }
  return begin(command, state, ctx);
}

/**
 * Corrections, rule by rule (README "Corrections"):
 * - a refund never exceeds what is left unrefunded of the debit (cumulative); no amount = all that is left;
 * - it unwinds the debit from its end: first the part no bucket covered, then the buckets in the reverse of the
 *   order the debit took them (a partial refund of r leaves the account as a debit of amount − r would have);
 * - the uncovered part reduces the overdraft this debit incurred, as far as it is still owed; what later grants
 *   already paid of it comes back as credits (reissued); a written-off or unlimited part moves nothing;
 * - a share goes back to its bucket while that bucket is live (not expired, not voided, the current cycle's
 *   allowance); the share of a bucket gone since is forfeited, or with restoreExpired reissued as a promotional
 *   bucket without expiry (never into the current allowance: it would reset with the cycle it never belonged to).
 */
function refundUsage(command: RefundUsage, state: AccountState, ctx: Ctx): Decision {
  if (command.amount !== undefined) {
    requirePositive(command.amount, 'amount');
    requireWithinAmountBound(command.amount, 'amount');
  }
  requireReason(command.reason);
  const fingerprint = refundFingerprint({ ...command, ...(command.amount !== undefined && { requestedAmount: command.amount }) });
  if (isRepeat(state, 'refund', command.refundId, fingerprint)) return noEvents();
  const debit = state.exists ? state.debits.get(command.usageId) : undefined;
  if (!debit) {
    throw new AccountError(AccountErrorCode.UsageNotFound, `usage ${command.usageId} was never debited on this account`, { field: 'usageId', usageId: command.usageId });
  }
  const refundable = debit.amount - debit.refunded;
  const amount = command.amount ?? refundable;
  if (amount <= 0n || amount > refundable) {
    throw new AccountError(
      AccountErrorCode.RefundExceedsDebit,
      refundable === 0n ? `usage ${command.usageId} is refunded in full already` : `at most ${formatCredits(refundable)} credits of usage ${command.usageId} are left to refund`,
      { field: 'amount', usageId: command.usageId, requested: amount, refundable, debited: debit.amount },
    );
  }

  const run = begin(command, state, ctx);
  // The debit as positions [0, debit.amount): its bucket shares in order, then the uncovered tail; this refund
  // gives back [end − amount, end), end = what is not refunded yet.
  const end = refundable;
  const start = end - amount;
  const overlap = (from: Micro, to: Micro): Micro => maxMicro(0n, minMicro(to, end) - maxMicro(from, start));

  const restored: BucketShare[] = [];
  const forfeited: BucketShare[] = [];
  let reissue = 0n;
  let position = 0n;
  const backwards: { share: BucketShare; take: Micro }[] = [];
  for (const share of debitShares(state, debit)) {
    const take = overlap(position, position + share.amount);
    position += share.amount;
    if (take > 0n) backwards.unshift({ share, take });
  }
  const tail = overlap(position, debit.amount);
  let overdraftReduced = 0n;
  let uncharged = 0n;
  const giveBack = (piece: BucketShare) => {
    if (isLive(run.state, piece.bucketId, ctx.now)) restored.push(piece);
    else if (command.restoreExpired) reissue += piece.amount;
    else forfeited.push(piece);
  };
  // The carried tail: what is still owed is owed no more; what a grant paid goes back to that grant, like a share of
  // its bucket (account-debt.model.ts); what no grant paid (taken back by a refund recorded before that) is reissued.
  const range = refundedTail(run.state, debit, amount);
  if (!debit.tailCarried) uncharged = tail;
  else if (range) {
    for (const piece of debtPieces(run.state.debt, range[0], range[1])) {
      if (piece.paidBy === undefined) overdraftReduced += piece.amount;
      else if (piece.paidBy === null) reissue += piece.amount;
      else giveBack({ bucketId: piece.paidBy, kind: (run.state.grants.get(piece.paidBy) as GrantRecord).kind, amount: piece.amount });
    }
  }
  for (const { share, take } of backwards) giveBack({ bucketId: share.bucketId, kind: share.kind, amount: take });
  const credited = restored.reduce((sum, piece) => sum + piece.amount, 0n) + reissue;
  requireWithinBalanceBound('balance', available(run.state) + held(run.state) + credited);

  run.emit({
    type: 'UsageRefunded',
    data: {
      refundId: command.refundId,
      usageId: command.usageId,
      amount,
      ...(command.amount !== undefined && { requestedAmount: command.amount }),
      restored,
      forfeited,
      ...(reissue > 0n && { reissued: { bucketId: command.refundId, amount: reissue } }),
      overdraftReduced,
      uncharged,
      perModel: unwindModels(debitLines(debit), start, end),
      restoreExpired: command.restoreExpired,
      reason: command.reason,
      refundedAt: run.at,
    },
  });
  return run;
}

/**
 * Void: what is left in the grant's bucket is removed; what was spent stays spent (no overdraft: the usage it paid
 * for happened and was priced right); what open holds reserve on it stays reserved, and expires (reason voided) when
 * a hold gives it back. A plan's allowance is not voidable; a grant is voided once.
 */
function voidGrant(command: VoidGrant, state: AccountState, ctx: Ctx): Decision {
  requireReason(command.reason);
  if (isRepeat(state, 'void', command.voidId, voidFingerprint(command))) return noEvents();
  const record = state.exists ? state.grants.get(command.grantId) : undefined;
  if (!record) {
    throw new AccountError(AccountErrorCode.GrantNotFound, `grant ${command.grantId} was never credited to this account`, { field: 'grantId', grantId: command.grantId });
  }
  if (record.kind === 'allowance') {
    throw new AccountError(AccountErrorCode.GrantNotVoidable, 'a plan allowance cannot be voided; cancel the subscription with effective=now instead (its allowance expires at once)', { field: 'grantId', grantId: command.grantId });
  }
  if (record.closed === 'voided') {
    throw new AccountError(AccountErrorCode.AlreadyVoided, `grant ${command.grantId} is voided already`, { field: 'grantId', grantId: command.grantId });
  }

  const run = begin(command, state, ctx);
  const bucket = run.state.buckets.find((b) => b.bucketId === command.grantId);
  run.emit({
    type: 'GrantVoided',
    data: {
      voidId: command.voidId,
      grantId: command.grantId,
      bucketId: command.grantId,
      kind: record.kind,
      amount: bucket && bucket.closedReason === undefined ? bucket.amount : 0n,
      reason: command.reason,
      voidedAt: run.at,
    },
  });
  // Like spending and expiry, a void can take the balance below a threshold.
  announceThresholds(run);
  return run;
}

/** A bucket credits can go back to: granted, not expired or voided, and (an allowance) the current cycle's. */
function isLive(state: AccountState, bucketId: string, now: Date): boolean {
  const record = state.grants.get(bucketId);
  if (!record || record.closed !== undefined) return false;
  if (state.buckets.find((b) => b.bucketId === bucketId)?.closedReason !== undefined) return false;
  if (record.kind === 'allowance' && (state.cycle === undefined || bucketId !== allowanceGrantId(state.cycle.cycleId))) return false;
  return record.expiresAt === undefined || !isDue(record.expiresAt, now);
}

/** The part of [start, end) of a usage's price that falls on each model's line (lines in pricing order). */
function unwindModels(lines: readonly ModelShare[], start: Micro, end: Micro): ModelShare[] {
  const out: ModelShare[] = [];
  let position = 0n;
  for (const line of lines) {
    const take = maxMicro(0n, minMicro(position + line.amount, end) - maxMicro(position, start));
    position += line.amount;
    if (take > 0n) out.unshift({ model: line.model, amount: take });
  }
  return out;
}

function requireReason(reason: string): void {
  if (typeof reason !== 'string' || reason.trim().length === 0 || reasonLength(reason) > MAX_REASON_LENGTH) {
    throw invalidCommand(`reason is required: 1-${MAX_REASON_LENGTH} characters`, { field: 'reason' });
  }
}

// ---------------------------------------------------------------------------------------------------------

export const allowanceGrantId = (cycleId: string): string => `allowance:${cycleId}`;

/** Events emitted so far and the state they lead to, so each step decides on up-to-date state. */
const noEvents = (): Decision => ({ events: [], states: [] });

class Run implements Decision {
  readonly events: AccountEvent[] = [];
  /** The state after each event of `events`. */
  readonly states: AccountState[] = [];
  readonly at: string;
  /** Thresholds announced earlier in the cycle that this decision may announce again (see rearmAtBoundary). */
  rearmed = new Set<number>();
  /** Depletion announced earlier that this decision may announce again (see rearmAtBoundary). */
  depletionRearmed = false;

  constructor(
    public state: AccountState,
    readonly now: Date,
  ) {
    this.at = now.toISOString();
  }

  emit(event: AccountEvent): void {
    this.events.push(event);
    this.state = evolve(this.state, event);
    this.states.push(this.state);
  }
}

function begin(command: AccountCommand, state: AccountState, ctx: Ctx): Run {
  if (state.exists && state.accountId !== command.accountId) {
    throw invalidCommand('command is for another account', { accountId: command.accountId, streamAccountId: state.accountId });
  }
  const run = new Run(state, ctx.now);
  if (!state.exists) run.emit({ type: 'AccountOpened', data: { accountId: command.accountId, openedAt: run.at } });
  housekeeping(run);
  rearmAtBoundary(run, state);
  // Credits expiring during the cycle can take available below a threshold as much as spending can (a promotion
  // ending); at the end of the period the allowance expires with the cycle, which is no low balance (announceThresholds
  // announces nothing of a cycle that has ended).
  if (run.events.some((e) => e.type === 'CreditsExpired')) announceThresholds(run);
  return run;
}

/**
 * Thresholds and depletion announced earlier in the cycle are armed again when available was back at or above them
 * (above 0 for depletion) at a boundary between decisions: as the previous decision left the account (`before`: a
 * hold released, or settled for less, gave its credits back), or after this one's housekeeping (a hold expired). The
 * next fall below is then a new one, announced again. Only boundaries count: credits a release gives back that the
 * overdraft takes in the same decision never lifted the balance anyone saw. It holds for this decision only (a later
 * one judges again from the account as the previous left it), and needs no event of its own: evolve keeps the
 * threshold in `crossedThresholds`, where announcing it again changes nothing. Grants and refunds also re-arm in
 * `evolve` (account.state), for good.
 */
function rearmAtBoundary(run: Run, before: AccountState): void {
  const allocation = run.state.cycle?.allocation ?? 0n;
  const highest = (a: Micro, b: Micro): Micro => (a > b ? a : b);
  const level = highest(thresholdLevel(run.state, run.now), before.exists ? thresholdLevel(before, run.now) : 0n);
  run.rearmed = new Set([...run.state.crossedThresholds].filter((percent) => !isBelowThreshold(level, percent, allocation)));
  run.depletionRearmed = run.state.depleted && highest(available(run.state), before.exists ? available(before) : 0n) > 0n;
}

/** Releases the holds and expires the buckets that are due at `run.now`. */
export function housekeeping(run: { state: AccountState; readonly now: Date; readonly at: string; emit(event: AccountEvent): void }): void {
  const released: Hold[] = [];
  for (const hold of run.state.holds.values()) {
    if (isDue(hold.expiresAt, run.now)) {
      run.emit({ type: 'HoldReleased', data: { holdId: hold.holdId, amount: hold.amount, reason: 'expired' } });
      released.push(hold);
    }
  }
  expireDueBuckets(run);
  if (released.length > 0) repayFromCredits(run, released.flatMap((hold) => hold.perBucket), released.reduce((sum, hold) => sum + hold.amount, 0n));
}

/**
 * Credits a hold gave back pay the overdraft carried, as a grant would (oldest debt first): usage that came while they
 * were reserved was carried because they were, and left alone they would expire with their cycle while the next
 * allowance paid the debt. Only what the hold gave back pays (`cap` from the buckets its `returned` shares name, as
 * far as they still hold it, in deduction order); credits the account held apart from it stay where they are. Outside
 * the renewal gap only: there the overdraft is usage deferred to the next allowance, which purchased or promotional
 * credits must not pay (recordUsage).
 */
function repayFromCredits(run: PayingRun, returned: readonly BucketShare[], cap: Micro): void {
  if (run.state.overdraft <= 0n || betweenCycles(run.state, run.now)) return;
  const back = new Map<string, Micro>();
  for (const share of returned) back.set(share.bucketId, (back.get(share.bucketId) ?? 0n) + share.amount);
  payFromBuckets(run, cap, (bucket) => back.get(bucket.bucketId) ?? 0n);
}

type PayingRun = { state: AccountState; readonly now: Date; emit(event: AccountEvent): void };

/**
 * Pays the overdraft from the account's buckets in deduction order, each bucket the payer of what it paid (oldest debt
 * first), at most `cap` in all and `limit(bucket)` from each.
 */
function payFromBuckets(run: PayingRun, cap: Micro, limit: (bucket: Bucket) => Micro = (bucket) => bucket.amount): void {
  let left = cap;
  for (const bucket of deductionOrder(run.state.buckets)) {
    const owed = run.state.overdraft;
    if (owed === 0n || left === 0n) return;
    const amount = minMicro(minMicro(bucket.amount, limit(bucket)), minMicro(owed, left));
    if (amount <= 0n) continue;
    run.emit({ type: 'OverdraftSettled', data: { grantId: bucket.bucketId, amount, remaining: owed - amount, fromBucket: true } });
    left -= amount;
  }
}

/** Expires what is left in buckets past their expiry, and credits given back to buckets already closed (of `only`). */
function expireDueBuckets(run: { state: AccountState; readonly now: Date; readonly at: string; emit(event: AccountEvent): void }, only: (bucket: Bucket) => boolean = () => true): void {
  for (const bucket of run.state.buckets) {
    if (bucket.amount <= 0n || !only(bucket)) continue;
    const due = bucket.expiresAt !== undefined && isDue(bucket.expiresAt, run.now);
    if (!due && bucket.closedReason === undefined) continue;
    run.emit({
      type: 'CreditsExpired',
      data: {
        bucketId: bucket.bucketId,
        kind: bucket.kind,
        amount: bucket.amount,
        reason: due ? 'expired' : (bucket.closedReason ?? 'expired'),
        expiredAt: run.at,
      },
    });
  }
}

interface GrantInput {
  grantId: string;
  kind: BucketKind;
  amount: Micro;
  expiresAt?: string;
  source: string;
  paymentReference?: string;
  reason?: string;
}

/**
 * Grants `input`: it pays outstanding overdraft first, unless `settlesOverdraft` is false (a promotional grant that
 * arrives already expired), and the bucket gets the rest. A cycle's allowance applied late still pays the overdraft
 * carried into that cycle. The credits the account then owns (available plus held: holds give theirs back) stay
 * within MAX_BALANCE_MICROS, so no balance of any read model overflows.
 */
function grant(run: Run, input: GrantInput, { settlesOverdraft = true } = {}): void {
  const settled = settlesOverdraft ? minMicro(run.state.overdraft, input.amount) : 0n;
  requireWithinBalanceBound('balance', available(run.state) + held(run.state) + input.amount - settled);
  if (settled > 0n) {
    run.emit({
      type: 'OverdraftSettled',
      data: { grantId: input.grantId, amount: settled, remaining: run.state.overdraft - settled },
    });
  }
  run.emit({
    type: 'CreditsGranted',
    data: {
      grantId: input.grantId,
      bucketId: input.grantId,
      kind: input.kind,
      amount: input.amount - settled,
      ...(input.expiresAt !== undefined && { expiresAt: input.expiresAt }),
      source: input.source,
      ...(input.paymentReference !== undefined && { paymentReference: input.paymentReference }),
      ...(input.reason !== undefined && { reason: input.reason }),
      grantedAt: run.at,
      ...(settled > 0n && { overdraftSettled: settled }),
    },
  });
}

/** Takes up to `amount` from the buckets in deduction order. */
function allocate(state: AccountState, amount: Micro): { perBucket: BucketShare[]; covered: Micro } {
  const perBucket: BucketShare[] = [];
  let remaining = amount;
  for (const bucket of deductionOrder(state.buckets) as readonly Bucket[]) {
    if (remaining === 0n) break;
    if (bucket.amount <= 0n) continue;
    const take = minMicro(bucket.amount, remaining);
    perBucket.push({ bucketId: bucket.bucketId, kind: bucket.kind, amount: take });
    remaining -= take;
  }
  return { perBucket, covered: amount - remaining };
}

/** The thresholds crossed, then the credits' depletion (by `usageId`, when a usage spent them); none under an unlimited plan. */
function announceLowBalance(run: Run, usageId?: string): void {
  if (run.state.plan.unlimited) return;
  announceThresholds(run);
  if ((!run.state.depleted || run.depletionRearmed) && available(run.state) === 0n) {
    run.depletionRearmed = false;
    const cycleId = run.state.cycle?.cycleId;
    run.emit({ type: 'CreditsDepleted', data: { ...(cycleId !== undefined && { cycleId }), ...(usageId !== undefined && { usageId }) } });
  }
}

/** Announces, highest first, every armed threshold of the cycle the balance is now below. */
function announceThresholds(run: Run): void {
  const { cycle, plan, crossedThresholds } = run.state;
  // Nothing is announced of a cycle that has ended: until the next starts, usage is owed to its allowance.
  if (plan.unlimited || !cycle || cycle.allocation <= 0n || betweenCycles(run.state, run.now)) return;
  const balance = available(run.state);
  const level = thresholdLevel(run.state, run.now);
  const percents = [...new Set(plan.thresholds)].sort((a, b) => b - a);
  for (const percent of percents) {
    if ((crossedThresholds.has(percent) && !run.rearmed.has(percent)) || !isBelowThreshold(level, percent, cycle.allocation)) continue;
    run.rearmed.delete(percent); // announced once per fall
    run.emit({
      type: 'LowCreditThresholdCrossed',
      data: { thresholdPercent: percent, cycleId: cycle.cycleId, available: balance, allocation: cycle.allocation },
    });
  }
}

/** `earlier`: the fingerprint the same content had under an earlier rule, still taken for a repeat. */
function isRepeat(state: AccountState, scope: IdempotencyScope, id: string, fingerprint: string, earlier?: string): boolean {
  const first = remembered(state, scope, id);
  if (first === undefined) return false;
  if (first === fingerprint || first === earlier) return true;
  const key = idempotencyKey(scope, id);
  // Only the key: the fingerprints hold what the caller sent (free-text reasons among it), and a refusal quotes no input.
  throw new AccountError(AccountErrorCode.IdempotencyConflict, `${key} was already used with different content`, { key });
}

function requirePositive(amount: Micro, field: string): void {
  if (typeof amount !== 'bigint') throw invalidAmount(field, amount, 'must be a bigint of micro-credits');
  if (amount <= 0n) throw invalidAmount(field, amount, 'must be positive');
}

function requireNonNegative(amount: Micro, field: string): void {
  if (typeof amount !== 'bigint') throw invalidAmount(field, amount, 'must be a bigint of micro-credits');
  if (amount < 0n) throw invalidAmount(field, amount, 'must not be negative');
}

function requireWithinAmountBound(amount: Micro, field: string): void {
  if (amount > MAX_AMOUNT_MICROS) {
    throw new AccountError(AccountErrorCode.AmountOutOfRange, `${field} must be at most ${formatCredits(MAX_AMOUNT_MICROS)} credits`, {
      field,
      amount,
      max: MAX_AMOUNT_MICROS,
    });
  }
}

/** `balance` names what would exceed the bound: balance (available + held), overdraft or usedThisCycle. */
function requireWithinBalanceBound(balance: string, wouldBe: Micro): void {
  if (wouldBe > MAX_BALANCE_MICROS) {
    throw new AccountError(
      AccountErrorCode.BalanceLimitExceeded,
      `${balance} would be ${formatCredits(wouldBe)} credits, above the limit of ${formatCredits(MAX_BALANCE_MICROS)} per account`,
      { balance, wouldBe, max: MAX_BALANCE_MICROS },
    );
  }
}

function requireInstant(value: string, field: string): number {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw invalidCommand(`${field} is not an ISO instant`, { [field]: value });
  return ms;
}

function requireThresholds(thresholds: readonly number[]): void {
  if (!thresholds.every((p) => typeof p === 'number' && Number.isFinite(p) && p > 0 && p <= 100)) {
    throw invalidCommand('thresholds are percents in (0, 100]', { thresholds });
  }
}

const invalidAmount = (field: string, amount: unknown, why: string): AccountError =>
  new AccountError(AccountErrorCode.InvalidAmount, `${field} ${why}`, { field, amount });

const invalidCommand = (message: string, details: Record<string, unknown>): AccountError =>
  new AccountError(AccountErrorCode.InvalidCommand, message, details);

export type AccountDecider = Decider<AccountState, AccountCommand, AccountEvent, Ctx>;

export const accountDecider: AccountDecider = { decide, evolve, initialState };

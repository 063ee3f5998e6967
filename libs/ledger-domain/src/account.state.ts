import { Map as ImmutableMap } from 'immutable';
import { minMicro, type Micro } from '@tally/money';
import type {
  AccountEvent,
  BucketKind,
  BucketShare,
  CreditsGranted,
  ExpiryReason,
  GrantVoided,
  ModelShare,
  OverdraftPolicy,
  UsageDebited,
  UsageRefunded,
} from './account.events';
import {
  cycleFingerprint,
  grantFingerprint,
  holdFingerprint,
  idempotencyKey,
  type IdempotencyScope,
  parseGrantFingerprint,
  planChangeFingerprint,
  refundFingerprint,
  usageFingerprint,
  voidFingerprint,
} from './account-idempotency.model';
import { type DebtLine, type DebtRange, emptyDebtLine, incurDebt, overlap, payDebt, takeBackDebt } from './account-debt.model';

export interface Bucket {
  readonly bucketId: string;
  readonly kind: BucketKind;
  /** Spendable amount left (reservations of open holds are already taken out). */
  readonly amount: Micro;
  readonly expiresAt?: string;
  /** Set once the bucket was expired: credits later returned to it by a hold are expired too. */
  readonly closedReason?: ExpiryReason;
}

export interface Hold {
  readonly holdId: string;
  readonly amount: Micro;
  /** Reservations taken from buckets; given back when the hold settles or is released. */
  readonly perBucket: readonly BucketShare[];
  readonly expiresAt: string;
}

export interface PlanTerms {
  readonly planId?: string;
  readonly unlimited: boolean;
  readonly thresholds: readonly number[];
  readonly overdraftPolicy: OverdraftPolicy;
}

export interface Cycle {
  readonly cycleId: string;
  readonly periodStart: string;
  readonly periodEnd: string;
  readonly allocation: Micro;
  /** The debt line's positions the account owed when the cycle began (usedThisCycle counts them): a refund of one gives it back. */
  readonly carried: DebtRange;
}

/** What a correction needs to know of a grant after its bucket is gone (spent, expired, voided). */
export interface GrantRecord {
  readonly kind: BucketKind;
  /** The grant's place among the account's grants (0 first): where its bucket goes back when a refund re-creates it. */
  readonly ordinal: number;
  readonly expiresAt?: string;
  /** Why its credits stopped being spendable: expired (any reason) or voided. */
  readonly closed?: ExpiryReason;
}

/**
 * What a refund needs to know of a usage debit. An account keeps one for every usage until its next snapshot
 * (account-memory.model.ts), and it is also how the account remembers the usage's idempotency key (`remembered`), so
 * it is compact: a debit one bucket paid in whole, for one model, keeps the bucket's id and the model's name in place
 * of the two lists (most debits; ~270 bytes a usage where lists and a key in `seen` took ~850). `debitShares` and
 * `debitLines` give every debit's lists.
 */
export interface DebitRecord {
  readonly amount: Micro;
  /** The bucket shares in the order the debit took them, or the id of the one bucket that paid it all. */
  readonly perBucket: readonly BucketShare[] | string;
  /**
   * The part no bucket covered (amount − shares) was carried as overdraft (else written off, or unlimited): set by
   * the usage's OverdraftIncurred, which follows its UsageDebited.
   */
  readonly tailCarried: boolean;
  /** Where a carried tail starts on the account's debt line (account-debt.model.ts). */
  readonly tailAt?: Micro;
  /** The price per model, or the name of the one model it was all for. */
  readonly lines: readonly ModelShare[] | string;
  readonly cycleId: string | undefined;
  /** Refunded so far (cumulative). */
  readonly refunded: Micro;
}

export interface AccountState {
  readonly exists: boolean;
  readonly accountId?: string;
  readonly openedAt?: string;
  /** In grant order; empty buckets no hold refers to are dropped. */
  readonly buckets: readonly Bucket[];
  /** Open holds only. */
  readonly holds: ReadonlyMap<string, Hold>;
  /** Usage not covered by credits, carried until the next grant (or credits a hold gives back) pays it. */
  readonly overdraft: Micro;
  /** Who paid which carried overdraft (account-debt.model.ts): a refund gives it back there. */
  readonly debt: DebtLine;
  readonly plan: PlanTerms;
  readonly cycle?: Cycle;
  /**
   * Credits of usage the cycle is charged for: what the account owed when it began (usage past the previous
   * allowance or in the renewal gap, which this cycle's credits pay), then its usage, net of refunds of this cycle's.
   */
  readonly usedThisCycle: Micro;
  /** Thresholds (percent) already announced in this cycle, i.e. disarmed. */
  readonly crossedThresholds: ReadonlySet<number>;
  /** CreditsDepleted was announced and no grant lifted the balance since. */
  readonly depleted: boolean;
  /**
   * Idempotency key → fingerprint of the content first seen with it. A persistent map (immutable.js): each event
   * adds a key in O(log n) and shares the rest with the previous state, where copying a native Map made every
   * debit cost O(usages so far) in time and garbage. Not usage keys: a usage is remembered by its debit (`remembered`);
   * here only when recalled after the debit was forgotten (account-memory.model.ts).
   */
  readonly seen: ImmutableMap<string, string>;
  /** Every grant by bucket id (= grant id), so a void or refund finds it after its bucket was pruned. */
  readonly grants: ImmutableMap<string, GrantRecord>;
  /** Every usage debit by usage id, for refunds and as the usage's idempotency key. */
  readonly debits: ImmutableMap<string, DebitRecord>;
  /** Every correction by its id (refundId, voidId): a repeated request is answered with the first result. */
  readonly corrections: ImmutableMap<string, UsageRefunded['data'] | GrantVoided['data']>;
  /**
   * Usage and hold keys and unrefunded debits older than the last snapshot were dropped (account-memory.model.ts):
   * the caller recalls them from the event store before deciding.
   */
  readonly partialMemory: boolean;
}

export const initialState: AccountState = Object.freeze<AccountState>({
  exists: false,
  buckets: [],
  holds: new Map<string, Hold>(),
  overdraft: 0n,
  debt: emptyDebtLine,
  plan: { unlimited: false, thresholds: [], overdraftPolicy: 'carry' },
  usedThisCycle: 0n,
  crossedThresholds: new Set<number>(),
  depleted: false,
  seen: ImmutableMap<string, string>(),
  grants: ImmutableMap<string, GrantRecord>(),
  debits: ImmutableMap<string, DebitRecord>(),
  corrections: ImmutableMap<string, UsageRefunded['data'] | GrantVoided['data']>(),
  partialMemory: false,
});

/** What a new action could spend now: the sum of the buckets (held credits are already out of them). */
export function available(state: AccountState): Micro {
  return state.buckets.reduce((sum, bucket) => sum + bucket.amount, 0n);
}

export function held(state: AccountState): Micro {
  let sum = 0n;
  for (const hold of state.holds.values()) sum += hold.amount;
  return sum;
}

/** An expiry (a hold's, a bucket's) that has come by `now`. */
export const isDue = (instant: string, now: Date): boolean => Date.parse(instant) <= now.getTime();

/**
 * What low-credit thresholds are judged on: the credits left, with what open holds reserve (a hold reserves credits, it
 * does not spend them). Judged on available alone, a product holding an estimate for each answer and settling it for
 * what the answer used was warned at every answer while within one hold of a threshold: each hold took available below
 * it and each settle for less lifted it back, re-arming it. A hold's credits count as spent when it settles. (Thresholds
 * announced by holds before this rule are re-armed here too, their credits being still left.) Only reservations of
 * credits still spendable count: what a hold reserves from a bucket expired since (the allowance of the cycle before,
 * a promotion ended) comes back expired.
 */
export function thresholdLevel(state: AccountState, now: Date): Micro {
  if (state.holds.size === 0) return available(state); // most decisions: nothing reserved, no bucket to look at
  const open = new Set(state.buckets.filter((bucket) => bucket.closedReason === undefined && !(bucket.expiresAt !== undefined && isDue(bucket.expiresAt, now))).map((bucket) => bucket.bucketId));
  let reserved = 0n;
  for (const hold of state.holds.values()) for (const share of hold.perBucket) if (open.has(share.bucketId)) reserved += share.amount;
  return available(state) + reserved;
}

/** `available` is below `percent`% of `allocation`. Percents may have up to two decimals (2.5). */
export function isBelowThreshold(availableAmount: Micro, percent: number, allocation: Micro): boolean {
  return availableAmount * 10_000n < BigInt(Math.round(percent * 100)) * allocation;
}

const NON_EXPIRING_RANK: Record<BucketKind, number> = { allowance: 0, promotional: 1, purchased: 2 };

/**
 * Deduction order: buckets with an expiry first, soonest first; then the ones without expiry, promotional
 * before purchased. Ties keep grant order (the sort is stable and `buckets` is in grant order).
 */
export function deductionOrder(buckets: readonly Bucket[]): Bucket[] {
  return [...buckets].sort((a, b) => {
    if (a.expiresAt !== undefined && b.expiresAt !== undefined) return Date.parse(a.expiresAt) - Date.parse(b.expiresAt);
    if (a.expiresAt !== undefined) return -1;
    if (b.expiresAt !== undefined) return 1;
    return NON_EXPIRING_RANK[a.kind] - NON_EXPIRING_RANK[b.kind];
  });
}

export function evolve(state: AccountState, event: AccountEvent): AccountState {
  switch (event.type) {
    case 'AccountOpened':
      return { ...state, exists: true, accountId: event.data.accountId, openedAt: event.data.openedAt };
    case 'CreditsGranted':
      return applyGrant(state, event);
    case 'UsageDebited': {
      const { data } = event;
      return prune({
        ...state,
        buckets: moveShares(state.buckets, data.perBucket, -1n),
        usedThisCycle: state.usedThisCycle + data.amount,
        debits: state.debits.has(data.usageId) ? state.debits : state.debits.set(data.usageId, debitRecord(state, data)),
      });
    }
    case 'CreditsExpired': {
      const { data } = event;
      const buckets = state.buckets.map((bucket) =>
        bucket.bucketId === data.bucketId
          ? { ...bucket, amount: bucket.amount - data.amount, closedReason: bucket.closedReason ?? data.reason }
          : bucket,
      );
      const record = state.grants.get(data.bucketId);
      const grants = record && record.closed === undefined ? state.grants.set(data.bucketId, { ...record, closed: data.reason }) : state.grants;
      return prune({ ...state, buckets, grants });
    }
    case 'UsageRefunded':
      return applyRefund(state, event);
    case 'GrantVoided':
      return applyVoid(state, event);
    case 'OverdraftIncurred': {
      const { line, tailAt } = incurDebt(state.debt, event.data.amount);
      const debit = state.debits.get(event.data.usageId);
      const debits = debit ? state.debits.set(event.data.usageId, { ...debit, tailCarried: true, tailAt }) : state.debits;
      return { ...state, overdraft: state.overdraft + event.data.amount, debt: line, debits };
    }
    case 'OverdraftWrittenOff':
      return state;
    case 'OverdraftSettled': {
      const { data } = event;
      const settled = { ...state, overdraft: data.remaining, debt: payDebt(state.debt, data.amount, data.grantId) };
      if (!data.fromBucket) return settled;
      return prune({ ...settled, buckets: moveShares(state.buckets, [{ bucketId: data.grantId, amount: data.amount }], -1n) });
    }
    case 'LowCreditThresholdCrossed':
      return { ...state, crossedThresholds: new Set(state.crossedThresholds).add(event.data.thresholdPercent) };
    case 'CreditsDepleted':
      return { ...state, depleted: true };
    case 'CycleStarted': {
      const { data } = event;
      return {
        ...state,
        cycle: { cycleId: data.cycleId, periodStart: data.periodStart, periodEnd: data.periodEnd, allocation: data.allocation, carried: [state.debt.paidTo, state.debt.incurred] },
        plan: { planId: data.planId, unlimited: data.unlimited, thresholds: data.thresholds, overdraftPolicy: data.overdraftPolicy },
        // Allowance of earlier cycles is over: whatever a hold gives back to it later is expired too.
        buckets: state.buckets.map((bucket) =>
          bucket.kind === 'allowance' && bucket.closedReason === undefined ? { ...bucket, closedReason: 'cycle-reset' } : bucket,
        ),
        usedThisCycle: state.overdraft, // what the account owes is this cycle's to pay (see usedThisCycle)
        // A new cycle arms its thresholds and depletion again: an account that starts it with nothing to spend (its
        // carried overdraft took the whole allowance) is announced depleted in it, as it is announced low.
        crossedThresholds: new Set<number>(),
        depleted: false,
        seen: remember(state.seen, idempotencyKey('cycle', data.cycleId), cycleFingerprint(data)),
      };
    }
    case 'PlanChanged': {
      const { data } = event;
      return {
        ...state,
        plan: { planId: data.planId, unlimited: data.unlimited, thresholds: data.thresholds, overdraftPolicy: data.overdraftPolicy },
        seen: remember(state.seen, idempotencyKey('change', data.changeId), planChangeFingerprint(data)),
      };
    }
    case 'HoldPlaced': {
      const { data } = event;
      const holds = new Map(state.holds);
      holds.set(data.holdId, { holdId: data.holdId, amount: data.amount, perBucket: data.perBucket, expiresAt: data.expiresAt });
      return prune({
        ...state,
        buckets: moveShares(state.buckets, data.perBucket, -1n),
        holds,
        seen: remember(state.seen, idempotencyKey('hold', data.holdId), holdFingerprint(data)),
      });
    }
    case 'HoldSettled':
    case 'HoldReleased':
      return resolveHold(state, event.data.holdId);
    default:
      return assertNever(event);
  }
}

export function fold(events: readonly AccountEvent[], from: AccountState = initialState): AccountState {
  return events.reduce(evolve, from);
}

function applyGrant(state: AccountState, { data }: CreditsGranted): AccountState {
  const buckets =
    data.amount > 0n
      ? [
          ...state.buckets,
          { bucketId: data.bucketId, kind: data.kind, amount: data.amount, ...(data.expiresAt !== undefined && { expiresAt: data.expiresAt }) },
        ]
      : state.buckets;
  const next: AccountState = {
    ...state,
    buckets,
    grants: state.grants.set(data.bucketId, {
      kind: data.kind,
      ordinal: state.grants.get(data.bucketId)?.ordinal ?? state.grants.size,
      ...(data.expiresAt !== undefined && { expiresAt: data.expiresAt }),
    }),
    seen: remember(
      state.seen,
      idempotencyKey('grant', data.grantId),
      grantFingerprint({ ...data, amount: data.amount + (data.overdraftSettled ?? 0n) }),
    ),
  };
  // A grant that arrived already expired (expired by the same decision) was never spendable: it lifts nothing back.
  const arrivedExpired = data.expiresAt !== undefined && Date.parse(data.expiresAt) <= Date.parse(data.grantedAt);
  return arrivedExpired ? next : rearm(next);
}

/** Credits coming back (a grant, a refund) re-arm every threshold they lift the balance back to, and end depletion. */
function rearm(next: AccountState): AccountState {
  const balance = available(next);
  const allocation = next.cycle?.allocation ?? 0n;
  const crossedThresholds = new Set([...next.crossedThresholds].filter((p) => isBelowThreshold(balance, p, allocation)));
  return { ...next, crossedThresholds, depleted: next.depleted && balance === 0n };
}

function applyRefund(state: AccountState, { data }: UsageRefunded): AccountState {
  const debit = state.debits.get(data.usageId);
  let buckets: Bucket[] = [...state.buckets];
  for (const share of data.restored) {
    if (buckets.some((bucket) => bucket.bucketId === share.bucketId)) {
      buckets = buckets.map((bucket) => (bucket.bucketId === share.bucketId ? { ...bucket, amount: bucket.amount + share.amount } : bucket));
    } else {
      // An emptied bucket was pruned: it comes back where it was, before the buckets of later grants, so credits of
      // the same kind and expiry are still spent in the order they were granted.
      const record = state.grants.get(share.bucketId);
      const ordinalOf = (bucketId: string) => state.grants.get(bucketId)?.ordinal ?? Number.MAX_SAFE_INTEGER;
      const later = buckets.findIndex((bucket) => ordinalOf(bucket.bucketId) > ordinalOf(share.bucketId));
      buckets.splice(later === -1 ? buckets.length : later, 0, {
        bucketId: share.bucketId,
        kind: share.kind,
        amount: share.amount,
        ...(record?.expiresAt !== undefined && { expiresAt: record.expiresAt }),
      });
    }
  }
  let grants = state.grants;
  if (data.reissued && data.reissued.amount > 0n) {
    buckets.push({ bucketId: data.reissued.bucketId, kind: 'promotional', amount: data.reissued.amount });
    grants = grants.set(data.reissued.bucketId, { kind: 'promotional', ordinal: grants.size });
  }
  const range = debit && refundedTail(state, debit, data.amount);
  const debt = range ? takeBackDebt(state.debt, range[0], range[1], data.overdraftReduced) : data.overdraftReduced > 0n ? payDebt(state.debt, data.overdraftReduced, null) : state.debt;
  // What the cycle is charged for of the debit: all of it, if the cycle debited it; else its tail owed when the cycle began.
  const sameCycle = debit !== undefined && debit.cycleId === state.cycle?.cycleId;
  const charged = sameCycle ? data.amount : range && state.cycle ? overlap(range, state.cycle.carried) : 0n;
  const usedThisCycle = state.usedThisCycle - minMicro(charged, state.usedThisCycle);
  return rearm(
    prune({
      ...state,
      buckets,
      grants,
      overdraft: state.overdraft - data.overdraftReduced,
      debt,
      usedThisCycle,
      debits: debit ? state.debits.set(data.usageId, { ...debit, refunded: debit.refunded + data.amount }) : state.debits,
      corrections: state.corrections.set(data.refundId, data),
      seen: remember(state.seen, idempotencyKey('refund', data.refundId), refundFingerprint(data)),
    }),
  );
}

function applyVoid(state: AccountState, { data }: GrantVoided): AccountState {
  const record = state.grants.get(data.grantId);
  const buckets = state.buckets.map((bucket) =>
    bucket.bucketId === data.bucketId ? { ...bucket, amount: bucket.amount - data.amount, closedReason: 'voided' as const } : bucket,
  );
  return prune({
    ...state,
    buckets,
    grants: record ? state.grants.set(data.grantId, { ...record, closed: 'voided' }) : state.grants,
    corrections: state.corrections.set(data.voidId, data),
    seen: remember(state.seen, idempotencyKey('void', data.voidId), voidFingerprint(data)),
  });
}

/** The debit as a refund needs it, compact (see DebitRecord). */
function debitRecord(state: AccountState, data: UsageDebited['data']): DebitRecord {
  const [only] = data.perBucket;
  const paidByOne = data.perBucket.length === 1 && only.amount === data.amount && state.grants.get(only.bucketId)?.kind === only.kind;
  const lines = modelShares(data.pricing.lines);
  return {
    amount: data.amount,
    perBucket: paidByOne ? only.bucketId : data.perBucket,
    tailCarried: false, // until its OverdraftIncurred
    lines: lines.length === 1 && lines[0].amount === data.amount ? lines[0].model : lines,
    cycleId: state.cycle?.cycleId,
    refunded: 0n,
  };
}

/**
 * The range of the debt line a refund of `amount` gives back of the debit's carried tail (a refund unwinds a debit
 * from its end, and the tail is its end): undefined when its tail was not carried or the refund reaches none of it.
 */
export function refundedTail(state: AccountState, debit: DebitRecord, amount: Micro): readonly [Micro, Micro] | undefined {
  if (!debit.tailCarried || debit.tailAt === undefined) return undefined;
  const covered = debitShares(state, debit).reduce((sum, share) => sum + share.amount, 0n);
  const end = debit.amount - debit.refunded;
  const start = end - amount;
  const from = start > covered ? start : covered;
  if (end <= from) return undefined;
  return [debit.tailAt + from - covered, debit.tailAt + end - covered];
}

/** The debit's bucket shares in the order it took them (a bucket's kind is its grant's). */
export function debitShares(state: AccountState, debit: DebitRecord): readonly BucketShare[] {
  if (typeof debit.perBucket !== 'string') return debit.perBucket;
  const kind = (state.grants.get(debit.perBucket) as GrantRecord).kind;
  return [{ bucketId: debit.perBucket, kind, amount: debit.amount }];
}

/** The debit's price per model. */
export function debitLines(debit: DebitRecord): readonly ModelShare[] {
  return typeof debit.lines === 'string' ? [{ model: debit.lines, amount: debit.amount }] : debit.lines;
}

/**
 * The fingerprint of the content an idempotency key (scope and id) was first used with, if the account remembers it:
 * a usage by its debit (whose amount is the usage's fingerprint), every other key (and a usage recalled after its
 * debit was forgotten) in `seen`.
 */
export function remembered(state: AccountState, scope: IdempotencyScope, id: string): string | undefined {
  const debit = scope === 'usage' ? state.debits.get(id) : undefined;
  return debit ? usageFingerprint(debit) : state.seen.get(idempotencyKey(scope, id));
}

/** A usage's price per model, merged by model in first-seen order. */
/** The content a grant's key (its grantId) was first used with; undefined for a key not used. Grant keys are never forgotten. */
export function rememberedGrant(state: AccountState, grantId: string): ReturnType<typeof parseGrantFingerprint> | undefined {
  const fingerprint = state.seen.get(idempotencyKey('grant', grantId));
  return fingerprint === undefined ? undefined : parseGrantFingerprint(fingerprint);
}

function modelShares(lines: readonly { model: string; amount: Micro }[]): ModelShare[] {
  const byModel = new Map<string, Micro>();
  for (const line of lines) byModel.set(line.model, (byModel.get(line.model) ?? 0n) + line.amount);
  return [...byModel].map(([model, amount]) => ({ model, amount }));
}

function resolveHold(state: AccountState, holdId: string): AccountState {
  const hold = state.holds.get(holdId);
  if (!hold) return state;
  const holds = new Map(state.holds);
  holds.delete(holdId);
  return prune({ ...state, holds, buckets: moveShares(state.buckets, hold.perBucket, 1n) });
}

function moveShares(buckets: readonly Bucket[], shares: readonly Pick<BucketShare, 'bucketId' | 'amount'>[], sign: 1n | -1n): Bucket[] {
  if (shares.length === 0) return [...buckets];
  const delta = new Map<string, Micro>();
  for (const share of shares) delta.set(share.bucketId, (delta.get(share.bucketId) ?? 0n) + share.amount);
  return buckets.map((bucket) => {
    const change = delta.get(bucket.bucketId);
    return change === undefined ? bucket : { ...bucket, amount: bucket.amount + sign * change };
  });
}

/** Drop empty buckets that no open hold will give credits back to, so long-lived accounts stay small. */
function prune(state: AccountState): AccountState {
  if (!state.buckets.some((bucket) => bucket.amount === 0n)) return state;
  const referenced = new Set<string>();
  for (const hold of state.holds.values()) for (const share of hold.perBucket) referenced.add(share.bucketId);
  return { ...state, buckets: state.buckets.filter((bucket) => bucket.amount !== 0n || referenced.has(bucket.bucketId)) };
}

function remember(seen: ImmutableMap<string, string>, key: string, fingerprint: string): ImmutableMap<string, string> {
  return seen.get(key) === fingerprint ? seen : seen.set(key, fingerprint);
}

export function assertNever(value: never): never {
  throw new Error(`unexpected ${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v))}`);
}

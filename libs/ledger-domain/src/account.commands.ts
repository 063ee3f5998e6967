import type { Micro } from '@tally/money';
import type { BucketKind, HoldReleaseReason, OverdraftPolicy, UsagePricing } from './account.events';

/** What the decider needs from the outside world. Time comes in here; the domain never reads a clock. */
export interface Ctx {
  readonly now: Date;
}

type Command<Type extends string, Data> = Readonly<{ type: Type; accountId: string } & Data>;

export type GrantCredits = Command<
  'GrantCredits',
  {
    /** Idempotency key; also the id of the bucket it creates. */
    grantId: string;
    kind: BucketKind;
    /** > 0 */
    amount: Micro;
    expiresAt?: string;
    /** e.g. 'purchase:pack-1000', 'promo:welcome' */
    source: string;
    paymentReference?: string;
    /** Why it was granted (the audit trail; required on promotional grants over HTTP, 1-500 characters). */
    reason?: string;
  }
>;

export type RecordUsage = Command<
  'RecordUsage',
  {
    usageId: string;
    /** >= 0, already priced. */
    amount: Micro;
    occurredAt: string;
    feature: string;
    models: readonly string[];
    pricing: UsagePricing;
    holdId?: string;
    metadata?: Readonly<Record<string, string>>;
  }
>;

export type StartCycle = Command<
  'StartCycle',
  {
    cycleId: string;
    planId: string;
    periodStart: string;
    periodEnd: string;
    allocation: Micro;
    unlimited: boolean;
    /** Percents of the allocation, e.g. [20, 5]. */
    thresholds: readonly number[];
    overdraftPolicy: OverdraftPolicy;
  }
>;

export type ChangePlan = Command<
  'ChangePlan',
  { changeId: string; planId: string; unlimited: boolean; thresholds: readonly number[]; overdraftPolicy: OverdraftPolicy }
>;

export type PlaceHold = Command<'PlaceHold', { holdId: string; amount: Micro; expiresAt: string }>;

export type ReleaseHold = Command<'ReleaseHold', { holdId: string; reason: HoldReleaseReason }>;

/**
 * Housekeeping: expire the buckets and holds due at `ctx.now`. With `bucketId` (the ledger's expiry worker), a
 * no-op unless that bucket still holds credits and is due: so the one decision that records events under the
 * worker's key (`expire-credits:<bucketId>`) is the one that expires that very bucket, and its key is never reused.
 */
export type ExpireCredits = Command<'ExpireCredits', { bucketId?: string }>;

/** Corrections' free-text reason (audit trail): 1-500 characters. */
export const MAX_REASON_LENGTH = 500;

/**
 * A reason's length in characters as the HTTP API counts them (class-validator's MaxLength, the published schema):
 * a character written as a surrogate pair (an emoji), or followed by a variation selector (U+FE0E, U+FE0F), counts
 * once. By UTF-16 units, 300 emoji passed the request's check and were refused by the command.
 */
export function reasonLength(reason: string): number {
  const pairs = reason.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)?.length ?? 0;
  const selectors = reason.match(/[\uFE0E\uFE0F]/g)?.length ?? 0;
  return reason.length - pairs - selectors;
}

/** Gives back part or all of a usage debit (see UsageRefunded for where the credits go). */
export type RefundUsage = Command<
  'RefundUsage',
  {
    /** `refund:<idempotencyKey>`: idempotency key, and the id of the bucket a reissue creates. */
    refundId: string;
    usageId: string;
    /** > 0; absent = all that is left unrefunded of the debit. */
    amount?: Micro;
    reason: string;
    /** Give back the shares of buckets that expired since, as a new promotional bucket without expiry. */
    restoreExpired: boolean;
  }
>;

/** Removes what is left of a grant or purchase. */
export type VoidGrant = Command<'VoidGrant', { /** `void:<idempotencyKey>` */ voidId: string; grantId: string; reason: string }>;

export type AccountCommand =
  | GrantCredits
  | RecordUsage
  | StartCycle
  | ChangePlan
  | PlaceHold
  | ReleaseHold
  | ExpireCredits
  | RefundUsage
  | VoidGrant;

export type AccountCommandType = AccountCommand['type'];

import type { Micro } from '@tally/money';

/**
 * Events of one account stream. Past tense, plain data: every field is JSON-able except the amounts,
 * which stay `bigint` micro-credits here; the infrastructure serializes them as decimal strings.
 * Optional fields are omitted, never set to `undefined`.
 */

export type BucketKind = 'allowance' | 'promotional' | 'purchased';
export type OverdraftPolicy = 'carry' | 'write-off';
/** `voided`: credits a hold gives back to a bucket after its grant was voided (GrantVoided) expire at once. */
export type ExpiryReason = 'expired' | 'cycle-reset' | 'plan-change' | 'voided';
export type HoldReleaseReason = 'released' | 'expired';

/** The part of an amount taken from (or reserved on) one bucket. */
export interface BucketShare {
  readonly bucketId: string;
  readonly kind: BucketKind;
  readonly amount: Micro;
}

/** One model's share of a priced usage event, with the counts it was priced on. */
export interface PricingLine {
  readonly model: string;
  readonly feature: string;
  readonly amount: Micro;
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly images?: number;
  readonly resolution?: string;
  readonly videoSeconds?: number;
}

export interface UsagePricing {
  readonly rateCardVersion: string;
  readonly lines: readonly PricingLine[];
}

type Event<Type extends string, Data> = Readonly<{ type: Type; data: Readonly<Data> }>;

export type AccountOpened = Event<'AccountOpened', { accountId: string; openedAt: string }>;

export type CreditsGranted = Event<
  'CreditsGranted',
  {
    grantId: string;
    bucketId: string;
    kind: BucketKind;
    /** What the bucket received: the granted amount minus `overdraftSettled`. */
    amount: Micro;
    expiresAt?: string;
    source: string;
    paymentReference?: string;
    /** Why it was granted (promotional grants through the API); absent on earlier events, purchases and allowances. */
    reason?: string;
    grantedAt: string;
    /** Part of the grant that paid outstanding overdraft (see the OverdraftSettled just before); absent when 0. */
    overdraftSettled?: Micro;
  }
>;

export type UsageDebited = Event<
  'UsageDebited',
  {
    usageId: string;
    amount: Micro;
    perBucket: readonly BucketShare[];
    /** Part of `amount` no bucket covered. */
    overdraft: Micro;
    pricing: UsagePricing;
    feature: string;
    models: readonly string[];
    occurredAt: string;
    debitedAt: string;
    holdId?: string;
    /** The usage's labels as reported (RecordUsage.metadata); omitted when it had none. */
    metadata?: Readonly<Record<string, string>>;
  }
>;

export type CreditsExpired = Event<
  'CreditsExpired',
  { bucketId: string; kind: BucketKind; amount: Micro; reason: ExpiryReason; expiredAt: string }
>;

export type OverdraftIncurred = Event<'OverdraftIncurred', { usageId: string; amount: Micro; total: Micro }>;
export type OverdraftWrittenOff = Event<'OverdraftWrittenOff', { usageId: string; amount: Micro }>;
/**
 * `amount` of the oldest carried overdraft is paid by `grantId`: a grant arriving (its CreditsGranted follows with
 * what is left of it), or, with `fromBucket`, credits the account already held in bucket `grantId` (they leave the
 * bucket): what a hold gave back (the overdraft was incurred while they were reserved), or, at a renewal, what the
 * new allowance could not pay.
 */
export type OverdraftSettled = Event<'OverdraftSettled', { grantId: string; amount: Micro; remaining: Micro; fromBucket?: boolean }>;

export type LowCreditThresholdCrossed = Event<
  'LowCreditThresholdCrossed',
  { thresholdPercent: number; cycleId: string; available: Micro; allocation: Micro }
>;

export type CreditsDepleted = Event<'CreditsDepleted', { cycleId?: string; usageId?: string }>;

export type CycleStarted = Event<
  'CycleStarted',
  {
    cycleId: string;
    planId: string;
    periodStart: string;
    periodEnd: string;
    allocation: Micro;
    unlimited: boolean;
    thresholds: readonly number[];
    overdraftPolicy: OverdraftPolicy;
  }
>;

export type PlanChanged = Event<
  'PlanChanged',
  { changeId: string; planId: string; unlimited: boolean; thresholds: readonly number[]; overdraftPolicy: OverdraftPolicy }
>;

export type HoldPlaced = Event<
  'HoldPlaced',
  { holdId: string; amount: Micro; perBucket: readonly BucketShare[]; expiresAt: string }
>;

export type HoldSettled = Event<
  'HoldSettled',
  { holdId: string; usageId: string; heldAmount: Micro; settledAmount: Micro; releasedAmount: Micro }
>;

export type HoldReleased = Event<'HoldReleased', { holdId: string; amount: Micro; reason: HoldReleaseReason }>;

/** One model's part of a refund (the usage read model takes it off that model's line). */
export interface ModelShare {
  readonly model: string;
  readonly amount: Micro;
}

/**
 * A correction: part or all of a usage debit given back (RefundUsage). The refund unwinds the debit from its end:
 * first the part no bucket covered (overdraft it incurred, or what the plan never charged), then the buckets in the
 * reverse of the order the debit took them. `amount` = restored + forfeited + reissued.amount + overdraftReduced +
 * uncharged, and is what no longer counts as spent.
 */
export type UsageRefunded = Event<
  'UsageRefunded',
  {
    /** The refund's id: `refund:<idempotencyKey>`. */
    refundId: string;
    usageId: string;
    amount: Micro;
    /** What the caller asked for; absent = "all that is left of the debit" (kept for the idempotency check). */
    requestedAmount?: Micro;
    /**
     * Credits put back into the live buckets the debit took them from, and into those of the grants that paid the
     * overdraft it incurred (account-debt.model.ts).
     */
    restored: readonly BucketShare[];
    /** Shares of those buckets that have expired (or were voided) since: not given back (restoreExpired false). */
    forfeited: readonly BucketShare[];
    /**
     * Credits with no live bucket to go back to, given as a new promotional bucket without expiry (`bucketId` =
     * refundId): the expired shares when restoreExpired, and overdraft of the debit paid by no grant the account
     * knows (taken back by a refund recorded before the debt line, which reduced another debit's overdraft).
     */
    reissued?: { readonly bucketId: string; readonly amount: Micro };
    /** The account's outstanding overdraft reduced: the part of this debit's still owed. */
    overdraftReduced: Micro;
    /** The part the account was never charged (written off, or under an unlimited plan): moves no credits. */
    uncharged: Micro;
    perModel: readonly ModelShare[];
    restoreExpired: boolean;
    reason: string;
    refundedAt: string;
  }
>;

/**
 * A correction: a grant or purchase voided (VoidGrant). `amount` is what was left in its bucket, removed now; what
 * was spent stays spent; what open holds reserved on it stays reserved, and expires when a hold gives it back.
 */
export type GrantVoided = Event<
  'GrantVoided',
  { voidId: string; grantId: string; bucketId: string; kind: BucketKind; amount: Micro; reason: string; voidedAt: string }
>;

export type AccountEvent =
  | AccountOpened
  | CreditsGranted
  | UsageDebited
  | CreditsExpired
  | OverdraftIncurred
  | OverdraftWrittenOff
  | OverdraftSettled
  | LowCreditThresholdCrossed
  | CreditsDepleted
  | CycleStarted
  | PlanChanged
  | HoldPlaced
  | HoldSettled
  | HoldReleased
  | UsageRefunded
  | GrantVoided;

export type AccountEventType = AccountEvent['type'];

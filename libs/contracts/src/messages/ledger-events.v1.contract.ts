import { Type } from 'class-transformer';
import {
  IsArray, IsBoolean, IsIn, IsISO8601, IsInt, IsObject, IsOptional, IsString, Matches, Max, MaxLength, Min, ValidateNested,
} from 'class-validator';
import { ID_PATTERN, IsCreditAmount } from '../validation.parser';
import { OVERDRAFT_POLICIES, type OverdraftPolicy } from './subscription-events.v1.contract';

/**
 * Payloads of ledger.events.v1, version 1 of each type (the current version of most; see ledger-events.contract.ts for
 * which version of each is current and the upcasters). The ledger's relay publishes every event it appended,
 * amounts as decimal credit strings, with `streamVersion` on the envelope. A released class is frozen: a change
 * of shape is a new version with an upcaster, never an edit here.
 */
export const BUCKET_KINDS = ['allowance', 'promotional', 'purchased'] as const;
export type BucketKindV1 = (typeof BUCKET_KINDS)[number];
/**
 * `voided` (added with corrections, issue 18): credits a hold gives back to a bucket whose grant was voided. An added
 * value, no change of shape: deploy the consumers first (they accept it), then the ledger (it may write it).
 */
export const EXPIRY_REASONS = ['expired', 'cycle-reset', 'plan-change', 'voided'] as const;
export type ExpiryReasonV1 = (typeof EXPIRY_REASONS)[number];
export const HOLD_RELEASE_REASONS = ['released', 'expired'] as const;
export type HoldReleaseReasonV1 = (typeof HOLD_RELEASE_REASONS)[number];

export class BucketShareV1 {
  @IsString() @MaxLength(200) bucketId!: string;
  @IsIn(BUCKET_KINDS) kind!: BucketKindV1;
  @IsCreditAmount() amount!: string;
}

export class PricingLineV1 {
  @IsString() @MaxLength(128) model!: string;
  @IsString() @MaxLength(32) feature!: string;
  @IsCreditAmount() amount!: string;
  @IsOptional() @IsInt() @Min(0) inputTokens?: number;
  @IsOptional() @IsInt() @Min(0) outputTokens?: number;
  @IsOptional() @IsInt() @Min(0) images?: number;
  @IsOptional() @IsString() resolution?: string;
  @IsOptional() @IsInt() @Min(0) videoSeconds?: number;
}

export class PricingV1 {
  @IsString() @MaxLength(64) rateCardVersion!: string;
  @IsArray() @ValidateNested({ each: true }) @Type(() => PricingLineV1) lines!: PricingLineV1[];
}

/**
 * The account's balance right after an event, computed by the ledger's decider (the authority). Carried on
 * every ledger.events.v1 envelope as `balanceAfter`, so read models and histories never re-derive money rules.
 */
export class BalanceSnapshotV1 {
  @IsCreditAmount() available!: string;
  @IsCreditAmount() allowance!: string;
  @IsCreditAmount() promotional!: string;
  @IsCreditAmount() purchased!: string;
  @IsCreditAmount() held!: string;
  @IsCreditAmount() overdraft!: string;
  @IsCreditAmount() allocation!: string;
  @IsCreditAmount() usedThisCycle!: string;
  @IsOptional() @IsString() @MaxLength(200) cycleId!: string | null;
  @IsOptional() @IsISO8601({ strict: true }) cycleEnd!: string | null;
  @IsOptional() @IsString() @MaxLength(64) planId!: string | null;
  @IsBoolean() unlimited!: boolean;
}

export class AccountOpenedV1 {
  @Matches(ID_PATTERN) accountId!: string;
  @IsISO8601({ strict: true }) openedAt!: string;
}

export class CreditsGrantedV1 {
  @IsString() @MaxLength(200) grantId!: string;
  @IsString() @MaxLength(200) bucketId!: string;
  @IsIn(BUCKET_KINDS) kind!: BucketKindV1;
  @IsCreditAmount() amount!: string;
  @IsOptional() @IsISO8601({ strict: true }) expiresAt?: string;
  @IsString() @MaxLength(200) source!: string;
  @IsOptional() @IsString() @MaxLength(200) paymentReference?: string;
  /** Why it was granted (promotional grants; optional: absent on purchases, allowances and earlier events). */
  @IsOptional() @IsString() @MaxLength(500) reason?: string;
  @IsISO8601({ strict: true }) grantedAt!: string;
  /**
   * Part of the grant that paid outstanding overdraft (the OverdraftSettled just before carries the detail);
   * absent when nothing was owed. `amount` is what the bucket received, so the gross grant is the sum of both.
   */
  @IsOptional() @IsCreditAmount() overdraftSettled?: string;
}

export class UsageDebitedV1 {
  @Matches(ID_PATTERN) usageId!: string;
  @IsCreditAmount() amount!: string;
  @IsArray() @ValidateNested({ each: true }) @Type(() => BucketShareV1) perBucket!: BucketShareV1[];
  @IsCreditAmount() overdraft!: string;
  @ValidateNested() @Type(() => PricingV1) pricing!: PricingV1;
  @IsString() @MaxLength(32) feature!: string;
  @IsArray() @IsString({ each: true }) models!: string[];
  @IsISO8601({ strict: true }) occurredAt!: string;
  @IsISO8601({ strict: true }) debitedAt!: string;
  @IsOptional() @Matches(ID_PATTERN) holdId?: string;
  @IsOptional() @IsObject() metadata?: Record<string, string>;
}

export class CreditsExpiredV1 {
  @IsString() @MaxLength(200) bucketId!: string;
  @IsIn(BUCKET_KINDS) kind!: BucketKindV1;
  @IsCreditAmount() amount!: string;
  @IsIn(EXPIRY_REASONS) reason!: ExpiryReasonV1;
  @IsISO8601({ strict: true }) expiredAt!: string;
}

export class OverdraftIncurredV1 {
  @Matches(ID_PATTERN) usageId!: string;
  @IsCreditAmount() amount!: string;
  @IsCreditAmount() total!: string;
}

export class OverdraftWrittenOffV1 {
  @Matches(ID_PATTERN) usageId!: string;
  @IsCreditAmount() amount!: string;
}

export class OverdraftSettledV1 {
  @IsString() @MaxLength(200) grantId!: string;
  @IsCreditAmount() amount!: string;
  @IsCreditAmount() remaining!: string;
}

export class LowCreditThresholdCrossedV1 {
  @IsInt() @Min(1) @Max(100) thresholdPercent!: number;
  @IsString() @MaxLength(200) cycleId!: string;
  @IsCreditAmount() available!: string;
  @IsCreditAmount() allocation!: string;
}

export class CreditsDepletedV1 {
  @IsOptional() @IsString() @MaxLength(200) cycleId?: string;
  @IsOptional() @Matches(ID_PATTERN) usageId?: string;
}

export class LedgerCycleStartedV1 {
  @IsString() @MaxLength(200) cycleId!: string;
  @IsString() @MaxLength(64) planId!: string;
  @IsISO8601({ strict: true }) periodStart!: string;
  @IsISO8601({ strict: true }) periodEnd!: string;
  @IsCreditAmount() allocation!: string;
  @IsBoolean() unlimited!: boolean;
  @IsArray() @IsInt({ each: true }) thresholds!: number[];
  @IsIn(OVERDRAFT_POLICIES) overdraftPolicy!: OverdraftPolicy;
}

export class LedgerPlanChangedV1 {
  @IsString() @MaxLength(200) changeId!: string;
  @IsString() @MaxLength(64) planId!: string;
  @IsBoolean() unlimited!: boolean;
  @IsArray() @IsInt({ each: true }) thresholds!: number[];
  @IsIn(OVERDRAFT_POLICIES) overdraftPolicy!: OverdraftPolicy;
}

export class HoldPlacedV1 {
  @Matches(ID_PATTERN) holdId!: string;
  @IsCreditAmount() amount!: string;
  @IsArray() @ValidateNested({ each: true }) @Type(() => BucketShareV1) perBucket!: BucketShareV1[];
  @IsISO8601({ strict: true }) expiresAt!: string;
}

export class HoldSettledV1 {
  @Matches(ID_PATTERN) holdId!: string;
  @Matches(ID_PATTERN) usageId!: string;
  @IsCreditAmount() heldAmount!: string;
  @IsCreditAmount() settledAmount!: string;
  @IsCreditAmount() releasedAmount!: string;
}

export class HoldReleasedV1 {
  @Matches(ID_PATTERN) holdId!: string;
  @IsCreditAmount() amount!: string;
  @IsIn(HOLD_RELEASE_REASONS) reason!: HoldReleaseReasonV1;
}

/** Corrections' free-text reason: 1-500 characters (the audit trail; README "Corrections"). */
export const MAX_CORRECTION_REASON_LENGTH = 500;

export class ModelShareV1 {
  @IsString() @MaxLength(128) model!: string;
  @IsCreditAmount() amount!: string;
}

export class ReissuedCreditsV1 {
  @IsString() @MaxLength(200) bucketId!: string;
  @IsCreditAmount() amount!: string;
}

/**
 * A correction: part or all of a usage debit given back. `amount` = sum(restored) + sum(forfeited) +
 * reissued.amount + overdraftReduced + uncharged; it no longer counts as spent. See the README's "Corrections".
 */
export class UsageRefundedV1 {
  @IsString() @MaxLength(200) refundId!: string;
  @Matches(ID_PATTERN) usageId!: string;
  @IsCreditAmount() amount!: string;
  /** What the caller asked for; absent = all that was left of the debit. */
  @IsOptional() @IsCreditAmount() requestedAmount?: string;
  /** Credits put back into the live buckets the debit took them from, or the grants that paid its overdraft took. */
  @IsArray() @ValidateNested({ each: true }) @Type(() => BucketShareV1) restored!: BucketShareV1[];
  /** Shares of those buckets that expired (or were voided) since: not given back. */
  @IsArray() @ValidateNested({ each: true }) @Type(() => BucketShareV1) forfeited!: BucketShareV1[];
  /** Credits given as a new promotional bucket without expiry (bucketId = refundId). */
  @IsOptional() @ValidateNested() @Type(() => ReissuedCreditsV1) reissued?: ReissuedCreditsV1;
  @IsCreditAmount() overdraftReduced!: string;
  /** The part the account was never charged (written off, unlimited plan): moves no credits. */
  @IsCreditAmount() uncharged!: string;
  @IsArray() @ValidateNested({ each: true }) @Type(() => ModelShareV1) perModel!: ModelShareV1[];
  @IsBoolean() restoreExpired!: boolean;
  @IsString() @MaxLength(MAX_CORRECTION_REASON_LENGTH) reason!: string;
  @IsISO8601({ strict: true }) refundedAt!: string;
}

/** A correction: a grant or purchase voided; `amount` is what was left in its bucket, removed. */
export class GrantVoidedV1 {
  @IsString() @MaxLength(200) voidId!: string;
  @IsString() @MaxLength(200) grantId!: string;
  @IsString() @MaxLength(200) bucketId!: string;
  @IsIn(BUCKET_KINDS) kind!: BucketKindV1;
  @IsCreditAmount() amount!: string;
  @IsString() @MaxLength(MAX_CORRECTION_REASON_LENGTH) reason!: string;
  @IsISO8601({ strict: true }) voidedAt!: string;
}

import { Type } from 'class-transformer';
import { IsArray, IsBoolean, IsISO8601, IsOptional, IsString, Matches, MaxLength, ValidateNested } from 'class-validator';
import { ID_PATTERN, IsCreditAmount } from '../validation.parser';
import { IsBoundedStringRecord } from '../validation-rules.parser';
import { BucketShareV1, PricingV1, type OverdraftSettledV1, type UsageDebitedV1 } from './ledger-events.v1.contract';
import { USAGE_METADATA_LIMITS } from './usage-recorded.v1.contract';

/**
 * UsageDebited version 2: the debit carries the usage's `metadata` labels (what the reporting service attached,
 * e.g. `{project, conversationId}`), always, `{}` when it had none.
 *
 * Why: version 1 declared `metadata` optional but the ledger never filled it (the decider dropped the labels
 * between RecordUsage and the debit), so nothing downstream of the ledger can attribute spend to a project, an end
 * user or a conversation: usage by label in the history/export and per-project budgets need it on the debit, the
 * only event that says what a usage cost. Required rather than optional, so a v2 reader never has to guess
 * whether labels were absent or dropped.
 */
export class UsageDebitedV2 {
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
  @IsBoundedStringRecord(USAGE_METADATA_LIMITS) metadata!: Record<string, string>;
}

/**
 * v1 → v2. Documented default: a v1 debit has the labels it carried, which is none for every debit the ledger
 * wrote before v2 (it dropped them), so `metadata` becomes `{}` ("no labels"); nothing else changes.
 */
export function upcastUsageDebitedV1(v1: UsageDebitedV1): UsageDebitedV2 {
  return { ...v1, metadata: v1.metadata ?? {} };
}

/**
 * OverdraftSettled version 2: `fromBucket` says who paid. Absent (every v1 settlement), a grant arriving paid it, and
 * its CreditsGranted follows with what is left of it; true, credits the account already held in bucket `grantId` paid
 * it, and they leave that bucket: a hold gave them back after usage was carried as overdraft while they were
 * reserved (the ledger repays at once, as a grant would, instead of letting them expire while the debt waits for the
 * next allowance), or a renewal's allowance could not pay all that was owed (usage deferred between two cycles) and
 * the account's other credits paid the rest.
 *
 * Why a version: a v1 reader would take such a settlement for a grant's and miss the credits leaving the bucket.
 */
export class OverdraftSettledV2 {
  @IsString() @MaxLength(200) grantId!: string;
  @IsCreditAmount() amount!: string;
  @IsCreditAmount() remaining!: string;
  @IsOptional() @IsBoolean() fromBucket?: boolean;
}

/** v1 → v2: nothing changes (every v1 settlement was a grant's). */
export function upcastOverdraftSettledV1(v1: OverdraftSettledV1): OverdraftSettledV2 {
  return { ...v1 };
}

import { ArrayMaxSize, IsArray, IsBoolean, IsIn, IsInt, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { MAX_AMOUNT_MICROS } from '@tally/money';
import { ID_PATTERN, IsCreditAmount } from '../validation.parser';
import { IsInstant } from '../validation-rules.parser';

export const OVERDRAFT_POLICIES = ['carry', 'write-off'] as const;
export type OverdraftPolicy = (typeof OVERDRAFT_POLICIES)[number];

/** subscription.events.v1 `CycleStarted` v1: a billing cycle began; the ledger resets the allowance. */
export class CycleStartedV1 {
  @Matches(ID_PATTERN) cycleId!: string;
  @IsString() @MaxLength(64) planId!: string;
  @IsInstant() periodStart!: string;
  @IsInstant() periodEnd!: string;
  @IsCreditAmount({ max: MAX_AMOUNT_MICROS }) allocation!: string;
  @IsBoolean() unlimited!: boolean;
  @IsArray() @ArrayMaxSize(10) @IsInt({ each: true }) @Min(1, { each: true }) @Max(100, { each: true }) thresholds!: number[];
  @IsIn(OVERDRAFT_POLICIES) overdraftPolicy!: OverdraftPolicy;
}

/** subscription.events.v1 `PlanChanged` v1: the plan's rules (not its allowance) changed now. */
export class PlanChangedV1 {
  @Matches(ID_PATTERN) changeId!: string;
  @IsString() @MaxLength(64) planId!: string;
  @IsBoolean() unlimited!: boolean;
  @IsArray() @ArrayMaxSize(10) @IsInt({ each: true }) @Min(1, { each: true }) @Max(100, { each: true }) thresholds!: number[];
  @IsIn(OVERDRAFT_POLICIES) overdraftPolicy!: OverdraftPolicy;
}

export const SUBSCRIPTION_CYCLE_STARTED = { type: 'CycleStarted', version: 1 } as const;
export const SUBSCRIPTION_PLAN_CHANGED = { type: 'PlanChanged', version: 1 } as const;

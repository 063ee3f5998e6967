import { Type } from 'class-transformer';
import {
  ArrayMaxSize, ArrayMinSize, IsIn, IsInt, IsString, Matches, Max, MaxLength, Min, ValidateNested,
  ValidateIf,
} from 'class-validator';
import { ID_PATTERN } from '../validation.parser';
import { IsBoundedStringRecord, IsOptionalNotNull } from '../validation-rules.parser';

export const USAGE_FEATURES = ['chat', 'agent', 'image', 'video', 'council'] as const;
export type UsageFeature = (typeof USAGE_FEATURES)[number];

/** Counts are JSON integers (not money): at most 2^31 tokens / images / seconds per event. */
const MAX_COUNT = 2_147_483_647;

/** At most 32 labels of ≤ 64-character keys and ≤ 512-character values: under 20 KiB per event. */
export const USAGE_METADATA_LIMITS = { maxEntries: 32, maxKeyLength: 64, maxValueLength: 512 } as const;

export class CouncilResponseV1 {
  @IsString()
  @MaxLength(128)
  model!: string;

  @IsInt() @Min(0) @Max(MAX_COUNT)
  inputTokens!: number;

  @IsInt() @Min(0) @Max(MAX_COUNT)
  outputTokens!: number;
}

/**
 * What an internal service reports after an AI action: the payload of a `UsageRecorded` v1 message on
 * usage.events.v1 (the envelope carries id = usage id, accountId and occurredAt).
 */
export class UsageRecordedV1 {
  @IsIn(USAGE_FEATURES, { message: `feature must be one of ${USAGE_FEATURES.join(', ')}` })
  feature!: UsageFeature;

  /** The model that did the work; for council, each model is in `responses`. */
  @ValidateIf((o: UsageRecordedV1) => o.feature !== 'council' || o.model !== undefined)
  @IsString()
  @MaxLength(128)
  model?: string;

  @ValidateIf((o: UsageRecordedV1) => o.feature === 'chat' || o.feature === 'agent' || o.inputTokens !== undefined)
  @IsInt() @Min(0) @Max(MAX_COUNT)
  inputTokens?: number;

  @ValidateIf((o: UsageRecordedV1) => o.feature === 'chat' || o.feature === 'agent' || o.outputTokens !== undefined)
  @IsInt() @Min(0) @Max(MAX_COUNT)
  outputTokens?: number;

  @ValidateIf((o: UsageRecordedV1) => o.feature === 'image' || o.images !== undefined)
  @IsInt() @Min(1) @Max(MAX_COUNT)
  images?: number;

  @ValidateIf((o: UsageRecordedV1) => o.feature === 'image' || o.resolution !== undefined)
  @IsString()
  @Matches(/^\d{2,5}x\d{2,5}$/, { message: 'resolution must look like 1024x1024' })
  resolution?: string;

  @ValidateIf((o: UsageRecordedV1) => o.feature === 'video' || o.videoSeconds !== undefined)
  @IsInt() @Min(1) @Max(MAX_COUNT)
  videoSeconds?: number;

  @ValidateIf((o: UsageRecordedV1) => o.feature === 'council' || o.responses !== undefined)
  @ArrayMinSize(1, { message: 'responses must list one response per model of the council' })
  @ArrayMaxSize(32)
  @ValidateNested({ each: true })
  @Type(() => CouncilResponseV1)
  responses?: CouncilResponseV1[];

  /** Settles this hold (placed by an authorization) for the actual amount. */
  @IsOptionalNotNull()
  @Matches(ID_PATTERN, { message: 'holdId must be 1-128 characters of letters, digits and . _ : @ -' })
  holdId?: string;

  /** Free-form labels for the caller's own reporting; bounded so an event always fits a Kafka message. */
  @IsOptionalNotNull()
  @IsBoundedStringRecord(USAGE_METADATA_LIMITS)
  metadata?: Record<string, string>;
}

export const USAGE_RECORDED = { type: 'UsageRecorded', version: 1 } as const;

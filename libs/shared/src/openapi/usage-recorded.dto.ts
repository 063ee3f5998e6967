import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { USAGE_FEATURES, USAGE_METADATA_LIMITS, UsageRecordedV1, type UsageFeature } from '@tally/contracts';
import { API_ID_PATTERN } from './api-schemas.decorator';

/** libs/contracts' bound on counts (tokens, images, seconds) of one usage event: 2^31 − 1. */
const MAX_COUNT = 2_147_483_647;

export class CouncilResponseDto {
  @ApiProperty({ maxLength: 128, example: 'gpt-4o' }) model!: string;
  @ApiProperty({ type: 'integer', minimum: 0, maximum: MAX_COUNT }) inputTokens!: number;
  @ApiProperty({ type: 'integer', minimum: 0, maximum: MAX_COUNT }) outputTokens!: number;
}

/**
 * The OpenAPI description of a usage (libs/contracts' UsageRecordedV1, which stays framework-free): the same
 * validation, inherited, plus every field's schema. Here because two services take it (usage-ingest's usage
 * events, the ledger's authorization estimates). Which counts are required depends on `feature` (see each field);
 * no string may hold a NUL or an unpaired surrogate, and JSON nests at most 32 levels.
 */
export class UsageRecordedDto extends UsageRecordedV1 {
  @ApiProperty({ enum: USAGE_FEATURES, example: 'chat' })
  override feature!: UsageFeature;

  @ApiPropertyOptional({ maxLength: 128, example: 'gpt-4o', description: 'The model that did the work; required unless feature is council' })
  override model?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: MAX_COUNT, example: 1200, description: 'Required for chat and agent' })
  override inputTokens?: number;

  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: MAX_COUNT, example: 350, description: 'Required for chat and agent' })
  override outputTokens?: number;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: MAX_COUNT, description: 'Required for image' })
  override images?: number;

  @ApiPropertyOptional({ pattern: '^\\d{2,5}x\\d{2,5}$', example: '1024x1024', description: 'Required for image' })
  override resolution?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: MAX_COUNT, description: 'Required for video' })
  override videoSeconds?: number;

  @ApiPropertyOptional({ type: [CouncilResponseDto], minItems: 1, maxItems: 32, description: 'Required for council: one response per model' })
  override responses?: CouncilResponseDto[];

  @ApiPropertyOptional({ pattern: API_ID_PATTERN, description: 'Settles this hold (placed by an authorization) for the actual amount' })
  override holdId?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string', maxLength: USAGE_METADATA_LIMITS.maxValueLength },
    maxProperties: USAGE_METADATA_LIMITS.maxEntries,
    description: `Free-form labels: at most ${USAGE_METADATA_LIMITS.maxEntries} string values, keys 1-${USAGE_METADATA_LIMITS.maxKeyLength} characters, values at most ${USAGE_METADATA_LIMITS.maxValueLength}`,
    example: { source: 'chat-ui' },
  })
  override metadata?: Record<string, string>;
}

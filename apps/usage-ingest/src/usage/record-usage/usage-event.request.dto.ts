import { ApiProperty } from '@nestjs/swagger';
import { Matches } from 'class-validator';
import { ID_PATTERN, IsInstant } from '@tally/contracts';
import { API_ID_PATTERN, UsageRecordedDto } from '@tally/shared';

/**
 * One usage event as internal services post it: the usage.events.v1 payload plus its id (idempotency key),
 * account and time. The same JSON, wrapped in the envelope, may be produced to Kafka directly.
 */
export class UsageEventRequest extends UsageRecordedDto {
  @ApiProperty({ description: 'Idempotency key of this usage', pattern: API_ID_PATTERN, example: 'chat-7f3a-0001' })
  @Matches(ID_PATTERN, { message: 'id must be 1-128 characters of letters, digits and . _ : @ -' })
  id!: string;

  @ApiProperty({ pattern: API_ID_PATTERN, example: 'acct_42' })
  @Matches(ID_PATTERN, { message: 'accountId must be 1-128 characters of letters, digits and . _ : @ -' })
  accountId!: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-21T10:00:00Z', description: 'ISO-8601 instant with an offset (Z or ±hh:mm); at most MAX_FUTURE_SKEW_SECONDS in the future' })
  @IsInstant()
  occurredAt!: string;
}

/** A batch: `{events: [...]}`, 1 to MAX_BATCH (1,000) events, all accepted or none. Documentation only: the handler validates. */
export class UsageEventBatchRequest {
  @ApiProperty({ type: [UsageEventRequest], minItems: 1, maxItems: 1000 })
  events!: UsageEventRequest[];
}

/** `accepted + duplicates` is always the number of events sent. */
export class RecordUsageResult {
  @ApiProperty({ type: 'integer', minimum: 0, description: 'Events handed to Kafka by this request' })
  accepted!: number;

  @ApiProperty({ type: 'integer', minimum: 0 })
  duplicates!: number;

  /**
   * One entry per duplicate (reported, not produced again): an id accepted by an earlier request, or repeated with
   * the same meaning inside this batch (an id repeated with another meaning refuses the batch with 400 on `events.N.id`).
   */
  @ApiProperty({ type: [String], description: 'Ids already accepted earlier, or repeated with the same content in this batch' })
  duplicateIds!: string[];
}

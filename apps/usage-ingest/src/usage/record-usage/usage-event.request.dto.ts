import { ApiProperty } from '@nestjs/swagger';
import { IsISO8601, Matches } from 'class-validator';
import { ID_PATTERN, UsageRecordedV1 } from '@tally/contracts';

/**
 * One usage event as internal services post it: the usage.events.v1 payload plus its id (idempotency key),
 * account and time. The same JSON, wrapped in the envelope, may be produced to Kafka directly.
 */
export class UsageEventRequest extends UsageRecordedV1 {
  @ApiProperty({ description: 'Idempotency key of this usage (1-128 chars)', example: 'chat-7f3a-0001' })
  @Matches(ID_PATTERN, { message: 'id must be 1-128 characters of letters, digits and . _ : @ -' })
  id!: string;

  @ApiProperty({ example: 'acct_42' })
  @Matches(ID_PATTERN, { message: 'accountId must be 1-128 characters of letters, digits and . _ : @ -' })
  accountId!: string;

  @ApiProperty({ example: '2026-11-21T10:00:00Z' })
  @IsISO8601({ strict: true }, { message: 'occurredAt must be an ISO-8601 timestamp' })
  occurredAt!: string;
}

/** `accepted + duplicates` is always the number of events sent. */
export interface RecordUsageResult {
  accepted: number;
  duplicates: number;
  /**
   * One entry per duplicate (reported, not produced again): an id accepted by an earlier request, or repeated with
   * the same meaning inside this batch (an id repeated with another meaning refuses the batch with 400 on `events.N.id`).
   */
  duplicateIds: string[];
}

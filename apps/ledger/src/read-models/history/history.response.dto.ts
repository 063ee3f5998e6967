import { ApiProperty } from '@nestjs/swagger';
import { ApiCredits } from '@tally/shared';
import type { TransactionItem, TransactionPage } from './transactions.query';
import type { UsageSummary } from './usage.query';

export class TransactionItemDto implements TransactionItem {
  @ApiProperty({ type: 'integer', minimum: 1 }) streamVersion!: number;
  @ApiProperty() eventId!: string;
  @ApiProperty({ example: 'UsageDebited' }) type!: string;
  @ApiCredits({ nullable: true, description: 'Signed (credit +, debit −); null for events that move no credits' }) amount!: string | null;
  @ApiCredits({ description: "The account's net balance right after the event: available credits minus the overdraft owed, so negative while the account owes credits (GET /balance shows the two apart)" }) balanceAfter!: string;
  @ApiProperty({ format: 'date-time' }) occurredAt!: string;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'The cause: model, feature, pack, cycle, expiry …' }) details!: Record<string, unknown>;
  @ApiProperty({ type: String, nullable: true, example: 'support-tool', description: 'Who did it (audit trail): the name of the API key that sent the command (a subscription change included), `system:expiry` for expiries, `system:scheduler` for what the billing calendar does itself (renewals, scheduled downgrades and cancellations taking effect), `topic:<name>` for usage a product produced on its own Kafka topic; null for events recorded before the audit trail' }) actor!: string | null;
}

export class TransactionPageDto implements TransactionPage {
  @ApiProperty({ type: [TransactionItemDto] }) items!: TransactionItemDto[];
  @ApiProperty({ type: String, nullable: true, description: 'Pass back as `cursor` for the next page; null on the last' }) nextCursor!: string | null;
}

export class UsageBucketDto {
  @ApiCredits() credits!: string;
  @ApiProperty({ type: 'integer', minimum: 0 }) requests!: number;
}

export class UsageByModelDto extends UsageBucketDto {
  @ApiProperty() model!: string;
}

export class UsageByFeatureDto extends UsageBucketDto {
  @ApiProperty() feature!: string;
}

export class UsageByDayDto extends UsageBucketDto {
  @ApiProperty({ format: 'date', example: '2026-11-21' }) day!: string;
}

export class UsageSummaryDto implements UsageSummary {
  @ApiProperty({ format: 'date-time' }) from!: string;
  @ApiProperty({ format: 'date-time' }) to!: string;
  @ApiProperty({ example: 'Europe/Berlin', description: "The IANA time zone of byDay's days: the request's `tz` by its canonical name, UTC by default" }) timeZone!: string;
  @ApiProperty({ type: UsageBucketDto }) totals!: UsageBucketDto;
  @ApiProperty({ type: [UsageByModelDto], description: 'Most credits first; ties by model id in code-point order' }) byModel!: UsageByModelDto[];
  @ApiProperty({ type: [UsageByFeatureDto], description: 'Most credits first; ties by feature in code-point order' }) byFeature!: UsageByFeatureDto[];
  @ApiProperty({ type: [UsageByDayDto], description: 'Days in `timeZone` that had usage, oldest first' }) byDay!: UsageByDayDto[];
}

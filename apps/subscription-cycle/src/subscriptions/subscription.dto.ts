import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { IsOptionalNotNull } from '@tally/contracts';

export class PutSubscriptionRequestDto {
  @ApiProperty({ maxLength: 64, example: 'pro', description: 'A plan id of the catalogue (GET /v1/plans)' })
  @IsString() @MaxLength(64)
  planId!: string;

  @ApiPropertyOptional({ enum: ['monthly', 'yearly'], description: "When given, must be the plan's billing interval" })
  @IsOptionalNotNull() @IsIn(['monthly', 'yearly'])
  interval?: 'monthly' | 'yearly';

  @ApiPropertyOptional({ maxLength: 64, example: 'America/New_York', description: 'IANA time zone; required to subscribe, fixed afterwards' })
  @IsOptionalNotNull() @IsString() @MaxLength(64)
  timeZone?: string;
}

export class CycleDto {
  @ApiProperty({ type: 'integer', minimum: 0 }) index!: number;
  @ApiProperty({ format: 'date-time' }) start!: string;
  @ApiProperty({ format: 'date-time', description: 'Exclusive: the start of the next cycle' }) end!: string;
}

export class PendingChangeDto {
  @ApiProperty() planId!: string;
  @ApiProperty({ enum: ['downgrade', 'cancel'] }) kind!: string;
  @ApiProperty({ format: 'date-time' }) effectiveAt!: string;
}

export class SubscriptionResponseDto {
  @ApiProperty() accountId!: string;
  @ApiProperty() planId!: string;
  @ApiProperty({ enum: ['monthly', 'yearly'] }) interval!: string;
  @ApiProperty() timeZone!: string;
  @ApiProperty({ format: 'date-time', description: 'Billing anchor instant; cycles start at its local wall time, monthly' }) anchor!: string;
  @ApiProperty({ type: CycleDto }) currentCycle!: CycleDto;
  @ApiProperty({ type: PendingChangeDto, nullable: true }) pendingChange!: PendingChangeDto | null;
}

export class PutSubscriptionResponseDto extends SubscriptionResponseDto {
  @ApiProperty({ enum: ['subscribed', 'upgraded', 'downgrade-scheduled', 'cancel-scheduled', 'cancelled', 'change-cancelled', 'unchanged'] })
  outcome!: string;
}

export class CancelSubscriptionQueryDto {
  @ApiPropertyOptional({
    enum: ['cycle-end', 'now'], default: 'cycle-end',
    description: "`cycle-end`: at the end of the current cycle (a yearly plan: of its paid year). `now`: at once (a refund, a chargeback): the fallback plan starts now under a new anchor and the allowance under way expires.",
  })
  @IsOptional() @IsIn(['cycle-end', 'now']) effective?: 'cycle-end' | 'now';
}

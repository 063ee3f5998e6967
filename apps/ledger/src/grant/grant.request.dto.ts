import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsISO8601, IsString, Matches, MaxLength } from 'class-validator';
import { ID_PATTERN, IsCreditAmount, IsOptionalNotNull } from '@tally/contracts';
import { MAX_AMOUNT_MICROS } from '@tally/money';

export class GrantRequest {
  @ApiProperty({ example: 'welcome-2026-11', description: 'Idempotency key of this grant' })
  @Matches(ID_PATTERN, { message: 'idempotencyKey must be 1-128 characters of letters, digits and . _ : @ -' })
  idempotencyKey!: string;

  @ApiProperty({ example: '50' })
  @IsCreditAmount({ positive: true, max: MAX_AMOUNT_MICROS })
  amount!: string;

  @ApiPropertyOptional({ example: '2026-12-31T23:59:59Z' })
  @IsOptionalNotNull()
  @IsISO8601({ strict: true }, { message: 'expiresAt must be an ISO-8601 instant' })
  expiresAt?: string;

  @ApiPropertyOptional({ example: 'welcome bonus' })
  @IsOptionalNotNull()
  @IsString()
  @MaxLength(200)
  reason?: string;
}

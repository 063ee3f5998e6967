import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, Length, Matches } from 'class-validator';
import { ID_PATTERN, IsCreditAmount, IsInstant, IsOptionalNotNull } from '@tally/contracts';
import { MAX_AMOUNT_MICROS } from '@tally/money';
import { API_ID_PATTERN, ApiCreditAmount } from '@tally/shared';

export class GrantRequest {
  @ApiProperty({ example: 'welcome-2026-11', description: 'Idempotency key of this grant', pattern: API_ID_PATTERN })
  @Matches(ID_PATTERN, { message: 'idempotencyKey must be 1-128 characters of letters, digits and . _ : @ -' })
  idempotencyKey!: string;

  @ApiCreditAmount({ positive: true, max: MAX_AMOUNT_MICROS, example: '50' })
  @IsCreditAmount({ positive: true, max: MAX_AMOUNT_MICROS })
  amount!: string;

  @ApiPropertyOptional({ format: 'date-time', example: '2026-12-31T23:59:59Z', description: 'When the granted credits expire (an ISO-8601 instant with an offset); never when omitted' })
  @IsOptionalNotNull()
  @IsInstant()
  expiresAt?: string;

  @ApiProperty({ minLength: 1, maxLength: 500, example: 'welcome bonus', description: 'Why the credits are granted (the audit trail): stored on the event, shown in the history' })
  @IsString({ message: 'reason is required: 1-500 characters saying why the credits are granted' })
  @Length(1, 500, { message: 'reason must be 1-500 characters' })
  @Matches(/\S/, { message: 'reason must not be blank' })
  reason!: string;
}

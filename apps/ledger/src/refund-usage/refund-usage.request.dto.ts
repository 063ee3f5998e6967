import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { ID_PATTERN, IsCreditAmount, IsOptionalNotNull } from '@tally/contracts';
import { MAX_REASON_LENGTH } from '@tally/ledger-domain';
import { MAX_AMOUNT_MICROS } from '@tally/money';
import { API_ID_PATTERN, ApiCreditAmount } from '@tally/shared';

export class RefundUsageRequest {
  @ApiProperty({ example: 'ticket-4711', description: 'Idempotency key of this refund (per account)', pattern: API_ID_PATTERN })
  @Matches(ID_PATTERN, { message: 'idempotencyKey must be 1-128 characters of letters, digits and . _ : @ -' })
  idempotencyKey!: string;

  @ApiCreditAmount({
    positive: true,
    max: MAX_AMOUNT_MICROS,
    required: false,
    example: '1.5',
    description: 'Credits to refund; at most what is left unrefunded of the debit. Omitted: all that is left',
  })
  @IsOptionalNotNull()
  @IsCreditAmount({ positive: true, max: MAX_AMOUNT_MICROS })
  amount?: string;

  @ApiProperty({ minLength: 1, maxLength: MAX_REASON_LENGTH, example: 'the answer was cut off (support ticket 4711)', description: 'Why (audit trail); shown in the history' })
  @IsString()
  @MinLength(1)
  @MaxLength(MAX_REASON_LENGTH)
  @Matches(/\S/, { message: 'reason must not be blank' })
  reason!: string;

  @ApiPropertyOptional({
    description: 'False when omitted. Give back the credits taken from buckets that have expired since (a past allowance, a promotion past its end) as a new promotional bucket without expiry; otherwise they are forfeited',
  })
  @IsOptionalNotNull()
  @IsBoolean()
  restoreExpired?: boolean;
}

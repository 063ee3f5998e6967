import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, Matches, MaxLength, ValidateIf } from 'class-validator';
import { ID_PATTERN, IsCreditAmount, IsOptionalNotNull } from '@tally/contracts';
import { MAX_AMOUNT_MICROS } from '@tally/money';
import { API_ID_PATTERN, ApiCreditAmount } from '@tally/shared';

export class PurchaseRequest {
  @ApiProperty({ description: 'Payment reference from the payment provider: the idempotency key', example: 'pi_3Nf9', pattern: API_ID_PATTERN })
  @Matches(ID_PATTERN, { message: 'paymentReference must be 1-128 characters of letters, digits and . _ : @ -' })
  paymentReference!: string;

  @ApiPropertyOptional({ maxLength: 64, example: 'pack-1000', description: 'A credit pack of the catalogue (GET /v1/plans); or give `amount`, not both' })
  @ValidateIf((o: PurchaseRequest) => o.amount === undefined || o.packId !== undefined)
  @IsString({ message: 'packId or amount is required' })
  @MaxLength(64)
  packId?: string;

  @ApiCreditAmount({ positive: true, max: MAX_AMOUNT_MICROS, required: false, example: '1000', description: 'Credits bought; or give `packId`, not both' })
  @IsOptionalNotNull()
  @IsCreditAmount({ positive: true, max: MAX_AMOUNT_MICROS })
  amount?: string;
}

import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, Matches, MaxLength, ValidateIf } from 'class-validator';
import { ID_PATTERN, IsCreditAmount, IsOptionalNotNull } from '@tally/contracts';
import { MAX_AMOUNT_MICROS } from '@tally/money';

export class PurchaseRequest {
  @ApiProperty({ description: 'Payment reference from the payment provider: the idempotency key', example: 'pi_3Nf9' })
  @Matches(ID_PATTERN, { message: 'paymentReference must be 1-128 characters of letters, digits and . _ : @ -' })
  paymentReference!: string;

  @ApiPropertyOptional({ example: 'pack-1000', description: 'A credit pack of the catalogue; or give `amount`' })
  @ValidateIf((o: PurchaseRequest) => o.amount === undefined || o.packId !== undefined)
  @IsString({ message: 'packId or amount is required' })
  @MaxLength(64)
  packId?: string;

  @ApiPropertyOptional({ example: '1000', description: 'Credits bought, a decimal string' })
  @IsOptionalNotNull()
  @IsCreditAmount({ positive: true, max: MAX_AMOUNT_MICROS })
  amount?: string;
}

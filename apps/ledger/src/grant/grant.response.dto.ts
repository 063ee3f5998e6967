import { ApiProperty } from '@nestjs/swagger';
import { ApiCredits } from '@tally/shared';
import { BalanceResponseDto } from '../accounts/balance.response.dto';

/** The answer to a grant or a purchase: what was credited (or, for a repeat, the first result) and the balance. */
export class CreditsGrantedResponseDto {
  @ApiProperty() accountId!: string;
  @ApiProperty({ example: 'grant:welcome-2026-11', description: '`grant:<idempotencyKey>` or `purchase:<paymentReference>`' }) grantId!: string;
  @ApiProperty({ enum: ['promotional', 'purchased'] }) kind!: string;
  @ApiCredits() amount!: string;
  @ApiProperty({ description: 'True for a repeat of an earlier grant (same key, same content): nothing credited again' }) duplicate!: boolean;
  @ApiProperty({ type: BalanceResponseDto }) balance!: BalanceResponseDto;
}

import { ApiProperty } from '@nestjs/swagger';
import { ApiCredits } from '@tally/shared';
import { BalanceResponseDto } from '../accounts/balance.response.dto';

/** The answer to a void (for a repeat: the first result) and the balance after it. */
export class GrantVoidedResponseDto {
  @ApiProperty() accountId!: string;
  @ApiProperty({ example: 'grant:welcome-2026-11' }) grantId!: string;
  @ApiProperty({ example: 'void:ticket-4712', description: '`void:<idempotencyKey>`' }) voidId!: string;
  @ApiProperty({ enum: ['promotional', 'purchased'] }) kind!: string;
  @ApiCredits({ description: 'What was left of the grant, removed (what was spent stays spent)' }) amount!: string;
  @ApiProperty() reason!: string;
  @ApiProperty({ format: 'date-time' }) voidedAt!: string;
  @ApiProperty({ description: 'True for a repeat (same key, same content): nothing voided again' }) duplicate!: boolean;
  @ApiProperty({ type: BalanceResponseDto }) balance!: BalanceResponseDto;
}

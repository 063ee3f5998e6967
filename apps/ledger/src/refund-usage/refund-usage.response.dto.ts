import { ApiProperty } from '@nestjs/swagger';
import { ApiCredits } from '@tally/shared';
import { BalanceResponseDto } from '../accounts/balance.response.dto';

export class RefundShareDto {
  @ApiProperty({ example: 'purchase:pay-1' }) bucketId!: string;
  @ApiProperty({ enum: ['allowance', 'promotional', 'purchased'] }) kind!: string;
  @ApiCredits() amount!: string;
}

export class ReissuedCreditsDto {
  @ApiProperty({ example: 'refund:ticket-4711', description: 'A new promotional bucket without expiry' }) bucketId!: string;
  @ApiCredits() amount!: string;
}

/** The answer to a refund (for a repeat: the first result) and the balance after it. */
export class UsageRefundedResponseDto {
  @ApiProperty() accountId!: string;
  @ApiProperty() usageId!: string;
  @ApiProperty({ example: 'refund:ticket-4711', description: '`refund:<idempotencyKey>`' }) refundId!: string;
  @ApiCredits({ description: 'Taken off the debit: no longer counts as spent' }) amount!: string;
  @ApiProperty({ type: [RefundShareDto], description: 'Credits put back into the buckets the debit took them from, and into those of the grants that paid its overdraft' }) restored!: RefundShareDto[];
  @ApiProperty({ type: [RefundShareDto], description: 'Credits of those buckets that have expired (or were voided) since: not given back (restoreExpired false)' }) forfeited!: RefundShareDto[];
  @ApiProperty({ type: ReissuedCreditsDto, nullable: true, description: 'Credits given back as a new promotional bucket without expiry (expired shares with restoreExpired; overdraft of this debit paid by no grant the account knows)' }) reissued!: ReissuedCreditsDto | null;
  @ApiCredits({ description: 'Overdraft this debit incurred and still owed, forgiven' }) overdraftReduced!: string;
  @ApiCredits({ description: 'Part the account was never charged (written off, unlimited plan): nothing moves' }) uncharged!: string;
  @ApiCredits({ description: 'What is left unrefunded of the debit now' }) refundable!: string;
  @ApiProperty() restoreExpired!: boolean;
  @ApiProperty() reason!: string;
  @ApiProperty({ format: 'date-time' }) refundedAt!: string;
  @ApiProperty({ description: 'True for a repeat (same key, same content): nothing refunded again' }) duplicate!: boolean;
  @ApiProperty({ type: BalanceResponseDto }) balance!: BalanceResponseDto;
}

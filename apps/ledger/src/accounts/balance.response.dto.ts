import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { API_ID_PATTERN, ApiCredits } from '@tally/shared';
import type { BalanceResponse } from './account-balance.view';

export class BalanceByKindDto {
  @ApiCredits({ description: 'Allowance credits of the current cycle' }) allowance!: string;
  @ApiCredits() promotional!: string;
  @ApiCredits() purchased!: string;
}

/** The balance as the HTTP API shows it (GET balance, and inside every credit's answer). */
export class BalanceResponseDto implements BalanceResponse {
  @ApiProperty({ pattern: API_ID_PATTERN }) accountId!: string;
  @ApiCredits({ description: 'Credits that can be spent now (held credits excluded)' }) available!: string;
  @ApiProperty({ type: BalanceByKindDto }) byKind!: BalanceByKindDto;
  @ApiCredits({ description: 'Reserved by open holds' }) held!: string;
  @ApiCredits({ description: 'Spent beyond zero, settled from the next credits' }) overdraft!: string;
  @ApiCredits({ description: "The plan's allowance per cycle" }) allocation!: string;
  @ApiCredits({
    description: 'Credits the cycle is charged for: what the account owed when the cycle began (usage past the last allowance or before the renewal), then its usage, net of refunds',
  })
  usedThisCycle!: string;
  @ApiProperty({ type: String, nullable: true }) planId!: string | null;
  @ApiProperty() unlimited!: boolean;
  @ApiProperty({ type: String, nullable: true }) cycleId!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) cycleEnd!: string | null;
  @ApiProperty({ type: 'integer', minimum: 0, description: 'Stream version the figures include' }) asOfVersion!: number;
  @ApiPropertyOptional({ format: 'date-time', description: 'With `?at=`: the instant the balance was folded at' }) asOf?: string;
}

import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ApiCredits } from '@tally/shared';

export class PlacedHoldDto {
  @ApiProperty() holdId!: string;
  @ApiCredits() amount!: string;
  @ApiProperty({ format: 'date-time', description: 'The end of the TTL: report the usage settling the hold by then (its credits stay reserved HOLD_SETTLE_GRACE_SECONDS longer)' })
  expiresAt!: string;
}

/** The account can pay (otherwise 402 INSUFFICIENT_CREDITS); with `hold`, the credits are reserved. */
export class AuthorizationResponseDto {
  @ApiProperty({ enum: [true] }) allowed!: boolean;
  @ApiCredits({ description: 'Credits the action needs' }) required!: string;
  @ApiCredits({ description: 'Available credits (after the hold, when one was placed)' }) available!: string;
  @ApiPropertyOptional({
    description: 'Without a hold: whether the plan is unlimited. With one: true when the plan is unlimited, and then nothing was reserved and no hold is kept (releasing it releases nothing)',
  })
  unlimited?: boolean;
  @ApiPropertyOptional({ type: PlacedHoldDto }) hold?: PlacedHoldDto;
}

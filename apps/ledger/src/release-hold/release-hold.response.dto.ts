import { ApiProperty } from '@nestjs/swagger';
import { ApiCredits } from '@tally/shared';

export class ReleaseHoldResponseDto {
  @ApiProperty() holdId!: string;
  @ApiCredits({ description: 'Credits released ("0" when the hold was already resolved)' }) released!: string;
  @ApiCredits() available!: string;
}

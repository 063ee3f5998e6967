import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsObject, Matches, Max, Min, ValidateIf, ValidateNested, IsDefined } from 'class-validator';
import { ID_PATTERN, IsCreditAmount, IsOptionalNotNull, UsageRecordedV1 } from '@tally/contracts';
import { MAX_AMOUNT_MICROS } from '@tally/money';
import { API_ID_PATTERN, ApiCreditAmount, UsageRecordedDto } from '@tally/shared';

export class HoldRequest {
  @ApiProperty({ description: 'Idempotency key of the hold; name it on the usage event to settle it', pattern: API_ID_PATTERN })
  @Matches(ID_PATTERN, { message: 'hold.holdId must be 1-128 characters of letters, digits and . _ : @ -' })
  holdId!: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 86_400, description: 'Seconds until the hold expires (default HOLD_DEFAULT_TTL_SECONDS): report the usage settling it by then. Its credits stay reserved HOLD_SETTLE_GRACE_SECONDS longer, so a usage reported just before still settles it', example: 300 })
  @IsOptionalNotNull()
  @IsInt() @Min(1) @Max(86_400)
  ttlSeconds?: number;
}

/** "May this account spend N (or this estimated usage)?", optionally reserving it with a hold. */
export class AuthorizationRequest {
  @ApiCreditAmount({ positive: true, max: MAX_AMOUNT_MICROS, required: false, example: '2.5', description: 'Credits required; or give `usage` to have it priced' })
  @ValidateIf((o: AuthorizationRequest) => o.usage === undefined || o.amount !== undefined)
  @IsDefined({ message: 'amount or usage is required' })
  @IsCreditAmount({ positive: true, max: MAX_AMOUNT_MICROS })
  amount?: string;

  @ApiPropertyOptional({ type: UsageRecordedDto, description: 'A usage estimate priced by the current rate card (when `amount` is not given)' })
  @IsOptionalNotNull()
  @IsObject({ message: 'usage must be a JSON object' })
  @ValidateNested()
  @Type(() => UsageRecordedV1)
  usage?: UsageRecordedV1;

  @ApiPropertyOptional({ type: HoldRequest })
  @IsOptionalNotNull()
  @IsObject({ message: 'hold must be a JSON object' })
  @ValidateNested()
  @Type(() => HoldRequest)
  hold?: HoldRequest;
}

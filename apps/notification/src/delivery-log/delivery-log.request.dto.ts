import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

/** Only plain decimal digits become a number: `0x10`, `1e2`, ` 5` or `5.0` stay strings and fail @IsInt (400). */
const decimalInteger = ({ value }: { value: unknown }): unknown => (typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : value);

export class DeliveryLogQuery {
  @ApiPropertyOptional({ type: 'integer', default: 50, minimum: 1, maximum: 200 })
  @IsOptional() @Transform(decimalInteger) @IsInt() @Min(1) @Max(200)
  limit?: number;
}

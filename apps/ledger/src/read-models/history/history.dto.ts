import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';

/**
 * Query strings as they arrive (all strings); their meaning is checked by history.parser.ts, which names the
 * offending field. These classes exist for the global ValidationPipe (unknown parameters → 400) and OpenAPI.
 */
export class UsageQueryDto {
  @ApiPropertyOptional({ enum: ['7d', '30d', 'cycle'], description: 'Instead of from/to. Default: the last 30 days.' })
  @IsOptional() @IsString() @MaxLength(8) period?: string;

  @ApiPropertyOptional({
    format: 'date-time', maxLength: 40, example: '2025-01-01T00:00:00Z',
    description: 'Inclusive, ISO-8601: an instant with an offset, or a date (its midnight in `tz`). With a portal token, at most 400 days before `to`.',
  })
  @IsOptional() @IsString() @MaxLength(40) from?: string;

  @ApiPropertyOptional({ format: 'date-time', maxLength: 40, example: '2025-02-01T00:00:00Z', description: 'Exclusive, ISO-8601 (a date is its midnight in `tz`); default now.' })
  @IsOptional() @IsString() @MaxLength(40) to?: string;

  @ApiPropertyOptional({
    maxLength: 64, example: 'Europe/Berlin', default: 'UTC',
    description: "IANA time zone of the days: the summary's `byDay` counts its days, the export's file is named by them, and a date-only `from`/`to` is its midnight. Offsets such as +01:00 are refused.",
  })
  @IsOptional() @IsString() @MaxLength(64) tz?: string;
}

/** Export: same parameters; without any, everything up to now. */
export class UsageExportQueryDto extends UsageQueryDto {}

export class TransactionsQueryDto {
  @ApiPropertyOptional({ type: 'integer', default: 50, minimum: 1, maximum: 500 })
  @IsOptional() @IsString() @MaxLength(8) limit?: string;

  @ApiPropertyOptional({ maxLength: 128, description: 'nextCursor of the previous page.' })
  @IsOptional() @IsString() @MaxLength(128) cursor?: string;

  @ApiPropertyOptional({ maxLength: 400, example: 'UsageDebited,CreditsGranted', description: 'Comma-separated event types.' })
  @IsOptional() @IsString() @MaxLength(400) type?: string;

  @ApiPropertyOptional({ format: 'date-time', maxLength: 40, description: 'Inclusive, ISO-8601.' })
  @IsOptional() @IsString() @MaxLength(40) from?: string;

  @ApiPropertyOptional({ format: 'date-time', maxLength: 40, description: 'Exclusive, ISO-8601.' })
  @IsOptional() @IsString() @MaxLength(40) to?: string;
}

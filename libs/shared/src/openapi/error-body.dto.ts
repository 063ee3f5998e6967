import { ApiProperty, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';

/** One offending input of a 400 VALIDATION_FAILED: the field (dotted path, `(root)` for the body) and why. */
export class FieldIssueDto {
  @ApiProperty({ example: 'events.3.inputTokens' }) field!: string;
  @ApiProperty({ example: 'inputTokens must not be less than 0' }) reason!: string;
}

/**
 * The one error shape of every Tally HTTP error (libs/shared/src/errors: AppError, HttpErrorFilter): a stable
 * `code` clients key on, a human `message`, and optional `details`. Each response of the OpenAPI document narrows
 * `code` to the codes that status can carry.
 */
export class ErrorBodyDto {
  @ApiProperty({ description: 'Stable error code', pattern: '^[A-Z][A-Z0-9_]*$', example: 'VALIDATION_FAILED' }) code!: string;
  @ApiProperty({ example: 'The request is invalid.' }) message!: string;
  @ApiPropertyOptional({
    description: 'VALIDATION_FAILED: the field issues; other codes: an object naming what the code is about (never the raw input)',
    oneOf: [{ type: 'array', items: { $ref: getSchemaPath(FieldIssueDto) } }, { type: 'object', additionalProperties: true }],
  })
  details?: FieldIssueDto[] | Record<string, unknown>;
}

/** 402 INSUFFICIENT_CREDITS: what the product shows as "Insufficient Credits", with the figures at the top level. */
export class InsufficientCreditsBodyDto extends ErrorBodyDto {
  @ApiProperty({ description: 'Credits the action needs, a decimal string', example: '2.5' }) required!: string;
  @ApiProperty({ description: 'Credits available (never negative), a decimal string', example: '0.75' }) available!: string;
  @ApiProperty({ example: 'Buy a credit pack or upgrade your plan to continue.' }) hint!: string;
}

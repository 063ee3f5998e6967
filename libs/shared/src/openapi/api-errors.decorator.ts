import { STATUS_CODES } from 'node:http';
import { applyDecorators } from '@nestjs/common';
import { ApiResponse, getSchemaPath, type ResponseObject } from '@nestjs/swagger';
import { RETRY_AFTER_SECONDS } from '../errors/http-error.filter';
import { ErrorBodyDto, InsufficientCreditsBodyDto } from './error-body.dto';

/** HTTP status → the stable codes an endpoint answers with it. */
export type ErrorCodesByStatus = Partial<Record<number, readonly string[]>>;

/**
 * The OpenAPI response of an error status: the one error shape, its `code` narrowed to `codes` (402 carries the
 * INSUFFICIENT_CREDITS figures; 503 a Retry-After header).
 */
export function errorResponse(status: number, codes: readonly string[]): ResponseObject {
  const shape = status === 402 ? InsufficientCreditsBodyDto : ErrorBodyDto;
  const unique = [...new Set(codes)].sort();
  return {
    description: `${STATUS_CODES[status] ?? 'Error'}: ${unique.join(', ')}`,
    ...(status === 503
      ? { headers: { 'Retry-After': { description: `Seconds to wait before retrying (${RETRY_AFTER_SECONDS}; 5 for STREAMS_AT_CAPACITY)`, schema: { type: 'integer', minimum: 0 } } } }
      : {}),
    ...(status === 429 ? { headers: RATE_LIMITED_HEADERS } : {}),
    content: {
      'application/json': {
        schema: { allOf: [{ $ref: getSchemaPath(shape) }, { type: 'object', properties: { code: { type: 'string', enum: unique } } }] },
      },
    },
  };
}

/** The headers of a 429 (README "Security": rate limits per API key, per portal token's account, per address). */
const RATE_LIMITED_HEADERS = {
  'Retry-After': { description: 'Whole seconds until the caller\'s next request is accepted', schema: { type: 'integer', minimum: 1 } },
  'RateLimit-Limit': { description: "The caller's burst (requests at once)", schema: { type: 'integer', minimum: 1 } },
  'RateLimit-Remaining': { description: 'Requests left at once (0 on a 429)', schema: { type: 'integer', minimum: 0 } },
  'RateLimit-Reset': { description: 'Seconds until a request is accepted again', schema: { type: 'integer', minimum: 0 } },
};

/** The codes an error response of the document allows (see errorResponse), or undefined if it is not one. */
export function errorCodesOf(response: ResponseObject | undefined): string[] | undefined {
  const schema = response?.content?.['application/json']?.schema as { allOf?: { properties?: { code?: { enum?: string[] } } }[] } | undefined;
  return schema?.allOf?.[1]?.properties?.code?.enum;
}

/**
 * The error statuses and codes of one endpoint beyond those of every endpoint (401/403, malformed URL or body,
 * 413/415, 503 DEPENDENCY_UNAVAILABLE: added by the document factory), e.g.
 * `@ApiErrors({ 404: ['ACCOUNT_NOT_FOUND'], 409: ['IDEMPOTENCY_CONFLICT'] })`. 400 always includes VALIDATION_FAILED.
 */
export function ApiErrors(codesByStatus: ErrorCodesByStatus) {
  return applyDecorators(
    ...Object.entries(codesByStatus).map(([status, codes]) => {
      const response = errorResponse(Number(status), codes ?? []);
      return ApiResponse({ status: Number(status), description: response.description, headers: response.headers, content: response.content } as never);
    }),
  );
}

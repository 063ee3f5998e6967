import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ContractViolation } from '@tally/contracts';
import { AppError, type ErrorBody } from './app.errors';
import { unavailableDependency } from './dependency-unavailable.errors';

/** Seconds a client is told to wait on a 503: about what a PostgreSQL restart or a broker failover takes. */
export const RETRY_AFTER_SECONDS = 2;

/** code → HTTP status, one table per app; unknown codes of AppError are 422. */
export type HttpStatusByCode = Readonly<Record<string, number>>;

/**
 * Errors the HTTP platform raises before a route runs. Nest turns Fastify's own errors (body too large, media
 * type, empty JSON body) into an HttpException with their status; the JSON parser's SyntaxError keeps
 * `statusCode: 400`.
 */
const PLATFORM_ERRORS: Readonly<Record<number, ErrorBody>> = {
  [HttpStatus.BAD_REQUEST]: { code: 'INVALID_JSON', message: 'The request body is not valid JSON.' },
  [HttpStatus.UNAUTHORIZED]: { code: 'UNAUTHENTICATED', message: 'Unauthenticated.' },
  [HttpStatus.FORBIDDEN]: { code: 'FORBIDDEN', message: 'Forbidden.' },
  [HttpStatus.NOT_FOUND]: { code: 'NOT_FOUND', message: 'No such route.' },
  [HttpStatus.PAYLOAD_TOO_LARGE]: { code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large.' },
  [HttpStatus.UNSUPPORTED_MEDIA_TYPE]: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Send the body as application/json.' },
  [HttpStatus.REQUEST_TIMEOUT]: { code: 'REQUEST_TIMEOUT', message: 'The request took too long to arrive.' },
  [HttpStatus.URI_TOO_LONG]: { code: 'URL_TOO_LONG', message: 'A path segment of the URL is too long.' },
  [431]: { code: 'HEADERS_TOO_LARGE', message: 'The request headers are too large.' },
};

/**
 * The body of an error the HTTP platform (Fastify, Node's HTTP parser) raised. Never the platform's own message:
 * it quotes the request (the path, the media type, a slice of the body), which must not be echoed.
 */
export function platformErrorBody(status: number): ErrorBody {
  return PLATFORM_ERRORS[status] ?? { code: `HTTP_${status}`, message: 'The request was refused by the HTTP layer.' };
}

/** The one HTTP error filter: every error leaves as `{ code, message, details? }` with a stable code. */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpErrorFilter');

  constructor(private readonly statusByCode: HttpStatusByCode) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const [status, body] = this.toHttp(error);
    if (status === HttpStatus.SERVICE_UNAVAILABLE) {
      // Retryable by definition: say when (unless the handler did: a full instance asks for longer). A dependency
      // outage, a busy account or a pending renewal is expected operations, not a bug: warn, once per request, with its code.
      if (!reply.hasHeader('Retry-After')) reply.header('Retry-After', String(RETRY_AFTER_SECONDS));
      this.logger.warn({ code: body.code, err: error instanceof Error ? error.message : String(error) }, 'request refused: retry later');
    } else if (status >= 500) this.logger.error({ err: error }, 'request failed');
    reply.status(status).send(body);
  }

  private toHttp(error: unknown): [number, ErrorBody] {
    if (error instanceof ContractViolation) {
      return [HttpStatus.BAD_REQUEST, { code: 'VALIDATION_FAILED', message: 'The request is invalid.', details: error.issues }];
    }
    if (error instanceof AppError) {
      return [this.statusByCode[error.code] ?? HttpStatus.UNPROCESSABLE_ENTITY, { ...error.extra, code: error.code, message: error.message, details: error.details }];
    }
    const dependency = unavailableDependency(error);
    if (dependency !== undefined) {
      return [HttpStatus.SERVICE_UNAVAILABLE, { code: 'DEPENDENCY_UNAVAILABLE', message: 'A dependency of this service is unavailable; retry after the Retry-After delay.', details: { dependency } }];
    }
    const status = platformStatus(error);
    if (status !== undefined) {
      return [status, platformErrorBody(status)];
    }
    return [HttpStatus.INTERNAL_SERVER_ERROR, { code: 'INTERNAL', message: 'Something went wrong; it has been logged.' }];
  }
}

/** The status of an error the platform raised (an HttpException, or the JSON parser's SyntaxError), if it is one. */
function platformStatus(error: unknown): number | undefined {
  if (error instanceof HttpException) return error.getStatus();
  if (error instanceof SyntaxError && (error as { statusCode?: number }).statusCode === HttpStatus.BAD_REQUEST) return HttpStatus.BAD_REQUEST;
  return undefined;
}

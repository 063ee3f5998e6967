import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { ContractViolation } from '@tally/contracts';
import { AppError, type ErrorBody } from './app-error';

/** code → HTTP status, one table per app; unknown codes of AppError are 422. */
export type HttpStatusByCode = Readonly<Record<string, number>>;

interface BodyParserError { type?: string; status?: number; message?: string }

/** The one HTTP error filter: every error leaves as `{ code, message, details? }` with a stable code. */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpErrorFilter');

  constructor(private readonly statusByCode: HttpStatusByCode) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const [status, body] = this.toHttp(error);
    if (status >= 500) this.logger.error({ err: error }, 'request failed');
    response.status(status).json(body);
  }

  private toHttp(error: unknown): [number, ErrorBody] {
    if (error instanceof ContractViolation) {
      return [HttpStatus.BAD_REQUEST, { code: 'VALIDATION_FAILED', message: 'The request is invalid.', details: error.issues }];
    }
    if (error instanceof AppError) {
      return [this.statusByCode[error.code] ?? HttpStatus.UNPROCESSABLE_ENTITY, { ...error.extra, code: error.code, message: error.message, details: error.details }];
    }
    const parser = error as BodyParserError;
    if (parser?.type === 'entity.too.large') {
      return [HttpStatus.PAYLOAD_TOO_LARGE, { code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large.' }];
    }
    if (parser?.type === 'entity.parse.failed') {
      return [HttpStatus.BAD_REQUEST, { code: 'INVALID_JSON', message: 'The request body is not valid JSON.' }];
    }
    if (error instanceof HttpException) {
      const status = error.getStatus();
      const code = status === 404 ? 'NOT_FOUND' : status === 401 ? 'UNAUTHENTICATED' : status === 403 ? 'FORBIDDEN' : `HTTP_${status}`;
      return [status, { code, message: error.message }];
    }
    return [HttpStatus.INTERNAL_SERVER_ERROR, { code: 'INTERNAL', message: 'Something went wrong; it has been logged.' }];
  }
}

/**
 * Base of every error a module raises on purpose. `code` is stable (clients and dashboards key on it);
 * each transport maps codes to its own outcome (HTTP status, Kafka retry or dead-letter). The domain never
 * throws transport errors.
 */
export class AppError<TCode extends string = string> extends Error {
  constructor(
    readonly code: TCode,
    message: string,
    readonly details?: Record<string, unknown>,
    /** Fields a contract puts at the top level of the error body (e.g. `required`, `available` on a 402). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** What an HTTP client receives for any error. */
export interface ErrorBody {
  [field: string]: unknown;
  code: string;
  message: string;
  details?: unknown;
}

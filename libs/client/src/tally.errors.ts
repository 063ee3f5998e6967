import type { components } from './tally-api.generated';

export type FieldIssue = components['schemas']['FieldIssueDto'];
type ErrorBody = components['schemas']['ErrorBodyDto'];

/**
 * Every failure the API answers (and a network failure that outlived the retries, `status: 0`), with the stable
 * `code` of its error body. Running out of credits is not one of these: it is an `InsufficientCredits` result.
 */
export class TallyError extends Error {
  override readonly name = 'TallyError';

  constructor(
    /** The HTTP status; 0 when no answer came (NETWORK_ERROR). */
    readonly status: number,
    /** The stable error code (`VALIDATION_FAILED`, `ACCOUNT_NOT_FOUND`, `IDEMPOTENCY_CONFLICT`, …). */
    readonly code: string,
    message: string,
    readonly details?: ErrorBody['details'],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The field issues of a VALIDATION_FAILED answer (empty for other codes). */
  get issues(): FieldIssue[] {
    return Array.isArray(this.details) ? this.details : [];
  }

  /** The first field the API refused (`events.3.inputTokens`), if any. */
  get field(): string | undefined {
    return this.issues[0]?.field;
  }

  /** Builds the error of an answer from its status and (possibly non-JSON) body. */
  static fromAnswer(status: number, body: unknown): TallyError {
    const error = isErrorBody(body) ? body : undefined;
    return new TallyError(status, error?.code ?? `HTTP_${status}`, error?.message ?? `Tally answered ${status}`, error?.details);
  }
}

/**
 * Statuses after which a request may have been carried out: no answer (0), 500, 502, 504, and 503, which the ledger
 * answers when it lost PostgreSQL's connection or gave up waiting on a statement: a commit may have happened all the
 * same (the server goes on with a statement its client gave up on).
 */
export const OUTCOME_UNKNOWN: ReadonlySet<number> = new Set([0, 500, 502, 503, 504]);

/**
 * An `authorize` with a hold, or a `placeHold`, that failed: `holdId` is the id every attempt sent (generated when the
 * caller gave none). `mayBePlaced`: an attempt got no answer, or a 500/502/503/504 (not only the last: an earlier
 * attempt may have placed it and a later one been refused with 429), so the hold may have been placed all the same: release
 * it by this id, or ask again with `{ holdId }` (one hold however often it is sent); a new id would reserve the credits twice.
 */
export class HoldPlacementError extends TallyError {
  constructor(
    cause: TallyError,
    readonly holdId: string,
    readonly mayBePlaced: boolean = OUTCOME_UNKNOWN.has(cause.status),
  ) {
    super(cause.status, cause.code, cause.message, cause.details, { cause });
  }
}

/** What `authorize`, `placeHold` and `withHold` give when the account cannot pay: a result, not an exception. */
export interface InsufficientCredits {
  ok: false;
  reason: 'INSUFFICIENT_CREDITS';
  /** Credits the action needs, a decimal string. */
  required: string;
  /** Credits available (never negative), a decimal string. */
  available: string;
  /** What the user can do ("Buy a credit pack or upgrade your plan to continue."). */
  hint: string;
  message: string;
}

export function insufficientCredits(body: components['schemas']['InsufficientCreditsBodyDto']): InsufficientCredits {
  return { ok: false, reason: 'INSUFFICIENT_CREDITS', required: body.required, available: body.available, hint: body.hint, message: body.message };
}

function isErrorBody(body: unknown): body is ErrorBody {
  return typeof body === 'object' && body !== null && typeof (body as ErrorBody).code === 'string' && typeof (body as ErrorBody).message === 'string';
}

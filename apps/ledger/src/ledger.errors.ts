import { AppError } from '@tally/shared';
import { isAccountError } from '@tally/ledger-domain';
import { PricingError } from '@tally/pricing';
import { EventStoreErrorCode, isEventStoreError } from '@tally/event-store';
import { formatCredits } from '@tally/money';

export type LedgerErrorCode =
  | 'ACCOUNT_NOT_FOUND'
  | 'INSUFFICIENT_CREDITS'
  | 'CYCLE_RENEWAL_PENDING'
  | 'IDEMPOTENCY_CONFLICT'
  | 'HOLD_CLOSED'
  | 'INVALID_AMOUNT'
  | 'AMOUNT_OUT_OF_RANGE'
  | 'BALANCE_LIMIT_EXCEEDED'
  | 'INVALID_COMMAND'
  | 'UNKNOWN_PACK'
  | 'UNPRICEABLE_USAGE'
  | 'ACCOUNT_BUSY'
  | 'PORTAL_DISABLED'
  | 'USAGE_NOT_FOUND'
  | 'REFUND_EXCEEDS_DEBIT'
  | 'GRANT_NOT_FOUND'
  | 'ALREADY_VOIDED'
  | 'GRANT_NOT_VOIDABLE'
  | 'TOO_MANY_STREAMS'
  | 'STREAMS_AT_CAPACITY'
  | 'SHUTTING_DOWN';

export class LedgerError extends AppError<LedgerErrorCode> {}

/** The read side's codes (HISTORY_STATUS_BY_CODE) are merged in by main.ts; ACCOUNT_NOT_FOUND is a 404 in both. */
export const LEDGER_STATUS_BY_CODE: Record<LedgerErrorCode, number> = {
  ACCOUNT_NOT_FOUND: 404,
  INSUFFICIENT_CREDITS: 402,
  // Retryable (with Retry-After): the account's cycle has ended and its renewal is not applied yet (ledger-domain's
  // betweenCycles); only the renewal says whether the account can pay.
  CYCLE_RENEWAL_PENDING: 503,
  IDEMPOTENCY_CONFLICT: 409,
  // A hold asked for again (the same id and content) after it was settled, released or expired: it reserves nothing.
  HOLD_CLOSED: 409,
  INVALID_AMOUNT: 400,
  // Bounds of libs/money: an amount above 1,000,000,000 credits, or a balance that would pass 100,000,000,000.
  AMOUNT_OUT_OF_RANGE: 400,
  BALANCE_LIMIT_EXCEEDED: 400,
  INVALID_COMMAND: 400,
  UNKNOWN_PACK: 400,
  UNPRICEABLE_USAGE: 400,
  // Retryable (with Retry-After): other writes to the account kept winning the race, e.g. consumers catching up.
  ACCOUNT_BUSY: 503,
  // Server configuration, not the request: minting portal tokens needs PORTAL_TOKEN_SECRET.
  PORTAL_DISABLED: 503,
  // A portal token's account has PORTAL_STREAMS_PER_ACCOUNT live balance streams open on this instance (Retry-After).
  TOO_MANY_STREAMS: 429,
  // This instance holds BALANCE_STREAMS_MAX live balance streams, of every caller together (Retry-After); another may answer.
  STREAMS_AT_CAPACITY: 503,
  // This instance is stopping (SIGTERM): a live balance stream asked for now is refused (Retry-After); another answers.
  SHUTTING_DOWN: 503,
  // Corrections (README "Corrections"): what is corrected does not exist, or the correction conflicts with what was done.
  USAGE_NOT_FOUND: 404,
  GRANT_NOT_FOUND: 404,
  REFUND_EXCEEDS_DEBIT: 409,
  ALREADY_VOIDED: 409,
  GRANT_NOT_VOIDABLE: 409,
};

/**
 * Domain and pricing errors → the ledger's coded errors (the domain itself knows no transport). `fieldPrefix`
 * is where the priced usage sits in the request (e.g. `usage.`), so a pricing error names the request's field.
 */
export function toLedgerError(error: unknown, fieldPrefix = ''): unknown {
  if (isEventStoreError(error, EventStoreErrorCode.WRONG_EXPECTED_VERSION)) {
    return new LedgerError('ACCOUNT_BUSY', 'The account is being changed by other writes; retry with the same idempotency key.');
  }
  // Events under this request's key-derived ids are stored with other content (a request under the same key that
  // decided differently got there first): the request's key was used for something else.
  if (isEventStoreError(error, EventStoreErrorCode.IDEMPOTENCY_CONFLICT)) {
    return new LedgerError('IDEMPOTENCY_CONFLICT', 'This idempotency key was already used with different content.');
  }
  if (isAccountError(error)) {
    // The domain's details hold amounts as bigint micro-credits; on the wire amounts are decimal credits.
    return new LedgerError(error.code as LedgerErrorCode, error.message, jsonSafe(error.details, formatCredits));
  }
  if (error instanceof PricingError) {
    const code = error.code === 'AMOUNT_OUT_OF_RANGE' ? 'AMOUNT_OUT_OF_RANGE' : 'UNPRICEABLE_USAGE';
    // The model and resolution the caller sent stay out of the answer: a refusal quotes no input.
    const { model: _model, resolution: _resolution, ...details } = error.details ?? {};
    if (details.field !== undefined) details.field = `${fieldPrefix}${details.field}`;
    return new LedgerError(code, error.message, jsonSafe(details));
  }
  return error;
}

function jsonSafe(details: unknown, bigintAs: (value: bigint) => string = String): Record<string, unknown> | undefined {
  if (!details) return undefined;
  return JSON.parse(JSON.stringify(details, (_k, v) => (typeof v === 'bigint' ? bigintAs(v) : v)));
}

import type { FieldIssue } from '@tally/contracts';
import { AppError } from '@tally/shared';
import { SubscriptionError, type SubscriptionErrorCode } from '@tally/subscription-domain';

export type SubscriptionCycleErrorCode =
  | SubscriptionErrorCode
  | 'INVALID_ACCOUNT_ID'
  | 'INTERVAL_MISMATCH'
  | 'TIME_ZONE_REQUIRED'
  | 'TIME_ZONE_IMMUTABLE'
  | 'SUBSCRIPTION_NOT_FOUND'
  | 'CONCURRENT_UPDATE'
  | 'INVALID_IDEMPOTENCY_KEY'
  | 'IDEMPOTENCY_CONFLICT';

/** Errors of this service; `details` is always a list of field issues so clients can point at the input. */
export class SubscriptionCycleError extends AppError<SubscriptionCycleErrorCode> {
  constructor(code: SubscriptionCycleErrorCode, message: string, readonly issues: FieldIssue[] = []) {
    // AppError types details as a record; the wire contract of this service is `details: [{field, reason}]`.
    super(code, message, (issues.length > 0 ? issues : undefined) as Record<string, unknown> | undefined);
  }
}

export const SUBSCRIPTION_CYCLE_STATUS_BY_CODE: Record<SubscriptionCycleErrorCode, number> = {
  INVALID_ACCOUNT_ID: 400,
  UNKNOWN_PLAN: 400,
  PLAN_RETIRED: 400,
  INVALID_TIME_ZONE: 400,
  INVALID_ANCHOR: 400,
  INTERVAL_MISMATCH: 400,
  TIME_ZONE_REQUIRED: 400,
  TIME_ZONE_IMMUTABLE: 400,
  INVALID_IDEMPOTENCY_KEY: 400,
  NOT_SUBSCRIBED: 404,
  SUBSCRIPTION_NOT_FOUND: 404,
  ALREADY_SUBSCRIBED: 409,
  CONCURRENT_UPDATE: 409,
  IDEMPOTENCY_CONFLICT: 409,
  INVALID_CATALOGUE: 500,
};

/** Names of the decider's fields as the HTTP API spells them. */
const HTTP_FIELD: Record<string, string> = { zone: 'timeZone', at: 'anchor' };

/** The domain never throws transport errors: this turns its refusals into this service's coded errors. */
export function fromDomainError(error: unknown): unknown {
  if (!(error instanceof SubscriptionError)) return error;
  const field = HTTP_FIELD[error.details.field] ?? error.details.field;
  return new SubscriptionCycleError(error.code, error.message, [{ field, reason: error.message }]);
}

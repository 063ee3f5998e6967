export type SubscriptionErrorCode =
  | 'INVALID_CATALOGUE'
  | 'UNKNOWN_PLAN'
  | 'PLAN_RETIRED'
  | 'INVALID_TIME_ZONE'
  | 'INVALID_ANCHOR'
  | 'NOT_SUBSCRIBED'
  | 'ALREADY_SUBSCRIBED';

export interface SubscriptionErrorDetails {
  /** The input field (or catalogue path) at fault. */
  field: string;
  [key: string]: unknown;
}

/** Everything the subscription domain refuses, with a code a transport filter maps (HTTP 404/409/422...). */
export class SubscriptionError extends Error {
  constructor(
    readonly code: SubscriptionErrorCode,
    message: string,
    readonly details: SubscriptionErrorDetails,
  ) {
    super(message);
    this.name = 'SubscriptionError';
  }
}

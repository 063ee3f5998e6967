import type { Micro } from '@tally/money';

export const AccountErrorCode = {
  InvalidAmount: 'INVALID_AMOUNT',
  /** One amount above MAX_AMOUNT_MICROS (libs/money). */
  AmountOutOfRange: 'AMOUNT_OUT_OF_RANGE',
  /** The command would take a balance (available + held, overdraft, used this cycle) above MAX_BALANCE_MICROS. */
  BalanceLimitExceeded: 'BALANCE_LIMIT_EXCEEDED',
  InvalidCommand: 'INVALID_COMMAND',
  IdempotencyConflict: 'IDEMPOTENCY_CONFLICT',
  InsufficientCredits: 'INSUFFICIENT_CREDITS',
  /**
   * The account's cycle (one with an allowance) has ended and the next CycleStarted is not applied yet, and what is
   * left cannot cover the request: only the renewal can say whether the account can pay. Retryable.
   */
  CycleRenewalPending: 'CYCLE_RENEWAL_PENDING',
  /** A refund names a usage this account never debited. */
  UsageNotFound: 'USAGE_NOT_FOUND',
  /** A refund asks for more than is left unrefunded of the debit (or nothing is left). */
  RefundExceedsDebit: 'REFUND_EXCEEDS_DEBIT',
  /** A void names a grant this account never received. */
  GrantNotFound: 'GRANT_NOT_FOUND',
  /** A void names a grant voided before (under another idempotency key). */
  AlreadyVoided: 'ALREADY_VOIDED',
  /** A plan's allowance cannot be voided (cancel the subscription with effective=now: the allowance expires at once). */
  GrantNotVoidable: 'GRANT_NOT_VOIDABLE',
} as const;
export type AccountErrorCode = (typeof AccountErrorCode)[keyof typeof AccountErrorCode];

/** Every refusal of the account decider. Transports map `code` to an HTTP status or to retry / dead-letter. */
export class AccountError extends Error {
  constructor(
    readonly code: AccountErrorCode,
    message: string,
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
    this.name = 'AccountError';
  }
}

export class InsufficientCreditsError extends AccountError {
  constructor(
    readonly required: Micro,
    readonly available: Micro,
  ) {
    super(AccountErrorCode.InsufficientCredits, `insufficient credits: ${required} µcr required, ${available} µcr available`, {
      required,
      available,
    });
    this.name = 'InsufficientCreditsError';
  }
}

export class CycleRenewalPendingError extends AccountError {
  constructor(cycleId: string, cycleEnd: string) {
    super(AccountErrorCode.CycleRenewalPending, `the cycle ${cycleId} ended at ${cycleEnd} and its renewal is not applied yet`, { cycleId, cycleEnd });
    this.name = 'CycleRenewalPendingError';
  }
}

export const isAccountError = (error: unknown, code?: AccountErrorCode): error is AccountError =>
  error instanceof AccountError && (code === undefined || error.code === code);

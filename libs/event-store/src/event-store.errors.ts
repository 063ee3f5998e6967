export const EventStoreErrorCode = {
  WRONG_EXPECTED_VERSION: 'WRONG_EXPECTED_VERSION',
  /** An event id is already stored in another stream or at another position. */
  IDEMPOTENCY_CONFLICT: 'IDEMPOTENCY_CONFLICT',
  /** The store cannot be reached; retrying later may succeed. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** The request itself is malformed (bad uuid, duplicate ids in one request, bad checkpoint…); never retry. */
  INVALID_REQUEST: 'INVALID_REQUEST',
} as const;
export type EventStoreErrorCode = (typeof EventStoreErrorCode)[keyof typeof EventStoreErrorCode];

export interface WrongExpectedVersionDetails {
  streamId: string;
  expected: number | 'any' | 'no_stream';
  /** null when the adapter could not tell (a concurrent writer won a race). */
  actual: number | null;
}

export class EventStoreError extends Error {
  override readonly name = 'EventStoreError';

  constructor(
    readonly code: EventStoreErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  static wrongExpectedVersion(details: WrongExpectedVersionDetails, cause?: unknown): EventStoreError {
    return new EventStoreError(
      EventStoreErrorCode.WRONG_EXPECTED_VERSION,
      `stream ${details.streamId}: expected version ${details.expected}, actual ${details.actual ?? 'unknown'}`,
      { ...details },
      { cause },
    );
  }

  /**
   * The stream was last written by a transaction younger than the caller's (PostgreSQL: readAll, ordered by
   * transaction id, would deliver this append before that version). Retrying in a new transaction resolves it.
   */
  static writtenByLaterTransaction(details: WrongExpectedVersionDetails): EventStoreError {
    return new EventStoreError(
      EventStoreErrorCode.WRONG_EXPECTED_VERSION,
      `stream ${details.streamId}: last written by a later transaction; retry the append in a new transaction`,
      { ...details, reason: 'written-by-later-transaction' },
    );
  }
}

export function isEventStoreError(e: unknown, code?: EventStoreErrorCode): e is EventStoreError {
  return e instanceof EventStoreError && (code === undefined || e.code === code);
}

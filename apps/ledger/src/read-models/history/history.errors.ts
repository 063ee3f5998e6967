import { ContractViolation } from '@tally/contracts';
import { AppError } from '@tally/shared';

export type HistoryErrorCode = 'ACCOUNT_NOT_FOUND';

export class HistoryError extends AppError<HistoryErrorCode> {}

/** Merge into the ledger's statusByCode. Bad parameters are ContractViolations (400 VALIDATION_FAILED + field). */
export const HISTORY_STATUS_BY_CODE: Record<HistoryErrorCode, number> = {
  ACCOUNT_NOT_FOUND: 404,
};

export const accountNotFound = (accountId: string): HistoryError =>
  new HistoryError('ACCOUNT_NOT_FOUND', 'No account with this id.', { accountId });

/** A 400 naming the offending query parameter. */
export const invalidParam = (field: string, reason: string): ContractViolation =>
  new ContractViolation('INVALID_PAYLOAD', [{ field, reason }]);

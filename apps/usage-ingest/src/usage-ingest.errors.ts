import { AppError } from '@tally/shared';

export type UsageIngestErrorCode = 'BATCH_TOO_LARGE' | 'IDEMPOTENCY_CONFLICT' | 'USAGE_PENDING' | 'KAFKA_UNAVAILABLE';

export class UsageIngestError extends AppError<UsageIngestErrorCode> {}

export const USAGE_INGEST_STATUS_BY_CODE: Record<UsageIngestErrorCode, number> = {
  BATCH_TOO_LARGE: 413,
  IDEMPOTENCY_CONFLICT: 409,
  USAGE_PENDING: 409,
  KAFKA_UNAVAILABLE: 503,
};

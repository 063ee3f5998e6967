import { backoffDelayMs as sharedBackoffDelayMs } from '@tally/shared';

export interface RetryPolicy {
  /** Attempts after the first one. */
  retries: number;
  minTimeoutMs: number;
  maxTimeoutMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 8, minTimeoutMs: 200, maxTimeoutMs: 30_000 };

/** The shared equal-jitter backoff (@tally/shared) over a consumer's retry policy; `attempt` is 1 for the first retry. */
export function backoffDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  return sharedBackoffDelayMs(policy.minTimeoutMs, policy.maxTimeoutMs, attempt, random);
}

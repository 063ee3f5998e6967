export interface RetryPolicy {
  /** Attempts after the first one. */
  retries: number;
  minTimeoutMs: number;
  maxTimeoutMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 8, minTimeoutMs: 200, maxTimeoutMs: 30_000 };

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so consumers that failed
 * together (a database restart) do not retry in lockstep, yet every wait still grows.
 * `attempt` is 1 for the first retry.
 */
export function backoffDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxTimeoutMs, policy.minTimeoutMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

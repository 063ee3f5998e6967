/**
 * Exponential backoff with "equal jitter": the ceiling doubles from `firstMs` with each attempt up to `mostMs`, and the
 * wait is half of it fixed and half random, so callers that failed together (a database restart) do not retry in
 * lockstep, yet every wait still grows. `attempt` is 1 for the first retry. The exponent stops at 40 (past any cap in
 * use), so a very late attempt stays a number even when `firstMs` is 0.
 */
export function backoffDelayMs(firstMs: number, mostMs: number, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(mostMs, firstMs * 2 ** Math.min(Math.max(0, attempt - 1), 40));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

import { TallyError } from './tally.errors';

export interface RetryOptions {
  /** Attempts in all, the first included (1 = no retry). */
  attempts: number;
  /** The delay before the first retry; it doubles with each further one. */
  baseDelayMs: number;
  /** No wait is longer than this, whatever the backoff or a Retry-After asks. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 4, baseDelayMs: 250, maxDelayMs: 5_000 };

/** The least spread of waits after a Retry-After (half the delay asked, when that is more). */
const RETRY_AFTER_SPREAD_MS = 500;

/**
 * The wait before retry number `retry` (1, 2, …); never more than `maxDelayMs`. After a Retry-After: at least the
 * delay asked and up to half as long again (RETRY_AFTER_SPREAD_MS at least), within the cap; asked more than the cap,
 * between three quarters of it and all of it: every caller refused at one moment is sent the same Retry-After, and waiting exactly that long
 * they all came back together and were refused together again. Otherwise exponential backoff with jitter between
 * half and all of `baseDelayMs · 2^(retry-1)`.
 */
export function retryDelayMs(retry: number, options: RetryOptions, retryAfterSeconds?: number, random: () => number = Math.random): number {
  if (retryAfterSeconds !== undefined) {
    const asked = retryAfterSeconds * 1_000;
    const latest = Math.min(options.maxDelayMs, asked + Math.max(RETRY_AFTER_SPREAD_MS, asked / 2));
    const earliest = asked <= options.maxDelayMs ? asked : options.maxDelayMs * 0.75;
    return Math.round(earliest + random() * (latest - earliest));
  }
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (retry - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Answers worth another try of the very same request: the server or a dependency was unavailable. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/** One attempt's answer, as openapi-fetch gives it. */
export interface Answer {
  response: Response;
}

/**
 * Sends the same request (same body, same idempotency keys: `send` must not change them) until it is answered with
 * anything but a retryable status, or `options.attempts` are spent. A network failure (an answer that did not come
 * within the client's timeout included) is retried too and, when the attempts run out, thrown as a TallyError
 * `NETWORK_ERROR` (status 0). An abort is never retried. `onAttempt`: each attempt's status (0: no answer), for a
 * caller that must know whether any of them may have been carried out, not only the last.
 */
export async function sendWithRetries<T extends Answer>(send: () => Promise<T>, options: RetryOptions, signal?: AbortSignal, onAttempt?: (status: number) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let answer: T;
    try {
      answer = await send();
      onAttempt?.(answer.response.status);
    } catch (error) {
      if (signal?.aborted || isAbort(error)) throw error;
      onAttempt?.(0);
      if (attempt >= options.attempts) throw new TallyError(0, 'NETWORK_ERROR', `Tally could not be reached after ${attempt} attempts`, undefined, { cause: error });
      await sleep(retryDelayMs(attempt, options), signal);
      continue;
    }
    if (attempt >= options.attempts || !isRetryableStatus(answer.response.status)) return answer;
    await sleep(retryDelayMs(attempt, options, retryAfterSeconds(answer.response)), signal);
  }
}

/** A Retry-After in seconds (the HTTP-date form is not used by Tally), or undefined. */
export function retryAfterSeconds(response: Response): number | undefined {
  const header = response.headers.get('retry-after');
  if (header === null || !/^\d+$/.test(header.trim())) return undefined;
  return Number(header);
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

/** Waits `ms`; rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((done, fail) => {
    if (signal?.aborted) return fail(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      done();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      fail(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

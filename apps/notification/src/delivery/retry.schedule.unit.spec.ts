import { isRetryableHttpStatus, isRetryableSmtpCode, nextAttemptAt, retryDelayMs } from './retry.schedule';

const schedule = { baseDelayMs: 1_000, maxDelayMs: 60_000, maxRetryMs: 24 * 3_600_000 };

describe('retry schedule', () => {
  it('grows exponentially with equal jitter and is capped', () => {
    expect(retryDelayMs(schedule, 1, () => 0)).toBe(500);
    expect(retryDelayMs(schedule, 1, () => 1)).toBe(1_000);
    expect(retryDelayMs(schedule, 4, () => 0)).toBe(4_000);
    expect(retryDelayMs(schedule, 4, () => 1)).toBe(8_000);
    expect(retryDelayMs(schedule, 30, () => 1)).toBe(60_000);
    expect(retryDelayMs(schedule, 1_000, () => 0.5)).toBe(45_000);
  });

  it('2xx ends it; 408, 429 and 5xx retry; other 4xx stop', () => {
    expect([408, 429, 500, 502, 503].every(isRetryableHttpStatus)).toBe(true);
    expect([301, 400, 401, 404, 410, 413].some(isRetryableHttpStatus)).toBe(false);
    expect(isRetryableSmtpCode(451)).toBe(true);
    expect(isRetryableSmtpCode(550)).toBe(false);
  });

  it('stops scheduling once the retry window is over', () => {
    const created = new Date('2026-11-21T00:00:00Z');
    const retryable = { kind: 'retryable', error: 'x' } as const;
    expect(nextAttemptAt(schedule, retryable, 1, created, created, () => 0)).toEqual(new Date(created.getTime() + 500));
    const late = new Date(created.getTime() + 24 * 3_600_000 - 10_000);
    expect(nextAttemptAt(schedule, retryable, 20, created, late, () => 0)).toBeUndefined();
    expect(nextAttemptAt(schedule, { kind: 'permanent', error: 'x' }, 1, created, created)).toBeUndefined();
  });
});

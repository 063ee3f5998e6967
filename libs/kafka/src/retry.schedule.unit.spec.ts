import { backoffDelayMs } from './retry.schedule';

describe('backoffDelayMs', () => {
  const policy = { retries: 5, minTimeoutMs: 100, maxTimeoutMs: 1_000 };

  it('doubles per attempt, jittered between half and all of the ceiling', () => {
    expect([1, 2, 3].map((attempt) => backoffDelayMs(policy, attempt, () => 0))).toEqual([50, 100, 200]);
    expect([1, 2, 3].map((attempt) => backoffDelayMs(policy, attempt, () => 1))).toEqual([100, 200, 400]);
  });

  it('never exceeds the maximum', () => {
    expect(backoffDelayMs(policy, 30, () => 1)).toBe(1_000);
    expect(backoffDelayMs(policy, 30, () => 0)).toBe(500);
  });
});

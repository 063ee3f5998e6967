import { setTimeout as sleep } from 'node:timers/promises';
import { BackgroundStart, NotReadyError, StallDetector } from './worker-health.service';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('StallDetector', () => {
  it('counts a streak as stalled after N attempts or after a duration, whichever comes first', () => {
    let now = 0;
    const detector = new StallDetector({ afterAttempts: 3, afterMs: 10_000 }, () => now);
    detector.failed('t:0', { offset: '5' }, new Error('a'));
    detector.failed('t:0', { offset: '5' }, new Error('b'));
    expect(detector.stalled()).toEqual([]);
    detector.failed('t:0', { offset: '5' }, new Error('c'));
    expect(detector.stalled()).toMatchObject([{ where: { offset: '5' }, attempts: 3, lastError: 'c', since: new Date(0).toISOString() }]);

    detector.failed('t:1', { offset: '9' }, 'x');
    now = 10_000;
    expect(detector.stalled().map((s) => s.where.offset)).toEqual(['5', '9']);
  });

  it('ends a streak on success, on retain() without the key, and after a quiet period when configured', () => {
    let now = 0;
    const detector = new StallDetector({ afterAttempts: 1, afterMs: 1_000, quietAfterMs: 5_000 }, () => now);
    detector.failed('a', {}, 'e');
    detector.failed('b', {}, 'e');
    detector.failed('c', {}, 'e');
    detector.succeeded('a');
    detector.retain((key) => key !== 'b');
    expect(detector.stalled().length).toBe(1);
    now = 5_001;
    expect(detector.stalled()).toEqual([]);
    // A new failure after the quiet period starts a new streak.
    expect(detector.failed('c', {}, 'e')).toMatchObject({ attempts: 1, since: new Date(5_001).toISOString() });
  });
});

describe('BackgroundStart', () => {
  it('returns at once, is ready while starting, not ready naming the error after a failed start, and ready once a retry succeeds', async () => {
    let attempts = 0;
    let release!: () => void;
    const start = new BackgroundStart({
      name: 'test consumer',
      logger: silent,
      retryMinMs: 10,
      start: () => {
        attempts += 1;
        if (attempts === 1) return Promise.reject(new Error('broker unreachable'));
        return new Promise<void>((resolve) => (release = resolve));
      },
    });
    start.begin();
    await new Promise((resolve) => setImmediate(resolve));
    expect(() => start.check()).toThrow(NotReadyError);
    expect(() => start.check()).toThrow(/test consumer failed to start .*broker unreachable/);

    await sleep(50);
    expect(attempts).toBe(2);
    expect(() => start.check()).not.toThrow(); // joining: ready, the service serves meanwhile
    expect(start.started).toBe(false);
    release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(start.started).toBe(true);
    start.stop();
  });

  it('reports a start still in progress after slowAfterMs', () => {
    let now = 0;
    const start = new BackgroundStart({ name: 'slow', logger: silent, slowAfterMs: 1_000, now: () => now, start: () => new Promise<void>(() => undefined) });
    start.begin();
    now = 1_001;
    expect(() => start.check()).toThrow(/slow still starting after 1 s/);
    start.stop();
  });
});

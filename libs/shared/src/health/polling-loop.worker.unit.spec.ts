import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logging/pino.logger';
import { metricsRegistry } from '../metrics/process.metrics';
import { NotReadyError } from './worker-health.service';
import { PollingLoop } from './polling-loop.worker';

const silent = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined } as unknown as Logger;

describe('PollingLoop readiness', () => {
  let clock = 0;
  const loops: PollingLoop[] = [];
  const loopOf = (work: (progressed: () => void) => Promise<unknown>): PollingLoop => {
    const loop = new PollingLoop('test-loop', 1, work, silent, { stall: { afterAttempts: 3, afterMs: 60_000 }, runningAfterMs: 30_000, now: () => clock });
    loops.push(loop);
    return loop;
  };
  const readiness = (loop: PollingLoop): string | undefined => {
    try {
      loop.check();
      return undefined;
    } catch (error) {
      expect(error).toBeInstanceOf(NotReadyError);
      return (error as Error).message;
    }
  };
  afterEach(async () => {
    for (const loop of loops.splice(0)) void loop.stop();
    clock = 0;
  });

  it('given a run that never ends (PostgreSQL not answering), when it has made no progress past the limit, then the loop is not ready', async () => {
    const loop = loopOf(() => new Promise(() => undefined));
    loop.start();
    await sleep(10);
    clock = 29_999;
    expect(readiness(loop)).toBeUndefined();
    clock = 30_000;
    expect(readiness(loop)).toBe('test-loop: a run has made no progress for 30 s (PostgreSQL not answering?)');
  });

  it('given a long run that reports progress (a backlog drained batch by batch), then the loop stays ready', async () => {
    let progressed!: () => void;
    const loop = loopOf((report) => {
      progressed = report;
      return new Promise(() => undefined);
    });
    loop.start();
    await sleep(10);
    for (const minute of [1, 2, 3, 4]) {
      clock = minute * 25_000;
      progressed();
      expect(readiness(loop)).toBeUndefined();
    }
    clock += 30_000;
    expect(readiness(loop)).toBe('test-loop: a run has made no progress for 30 s (PostgreSQL not answering?)');
  });

  it('given runs that keep failing, when the streak reaches the threshold, then the loop is not ready, and ready again after a run succeeds', async () => {
    // Each run waits for the test to end it, so the test knows how many have failed.
    const pending: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
    const loop = loopOf(() => new Promise<void>((resolve, reject) => pending.push({ resolve, reject })));
    const nextRun = async () => {
      while (pending.length === 0) await sleep(2);
      return pending.shift() as { resolve: () => void; reject: (error: Error) => void };
    };
    loop.start();
    (await nextRun()).reject(new Error('connection refused'));
    (await nextRun()).reject(new Error('connection refused'));
    const third = await nextRun();
    expect(readiness(loop)).toBeUndefined();
    third.reject(new Error('connection refused'));
    const fourth = await nextRun();
    expect(readiness(loop)).toMatch(/^test-loop: runs failed 3 times since .*: connection refused$/);
    fourth.resolve();
    await nextRun();
    expect(readiness(loop)).toBeUndefined();
  });

  it('given runs that succeed, then the loop stays ready', async () => {
    let runs = 0;
    const loop = loopOf(async () => void (runs += 1));
    loop.start();
    while (runs < 3) await sleep(2);
    clock = 1_000_000;
    expect(readiness(loop)).toBeUndefined();
  });
});

describe('PollingLoop wake-ups', () => {
  const loops: PollingLoop[] = [];
  afterEach(async () => {
    await Promise.all(loops.splice(0).map((loop) => loop.stop()));
  });
  const runsOf = (interval: number, work: (loop: PollingLoop, run: number) => void) => {
    const runs: number[] = [];
    const loop: PollingLoop = new PollingLoop('wake-loop', interval, async () => {
      runs.push(Date.now());
      work(loop, runs.length);
    }, silent);
    loops.push(loop);
    return { loop, runs };
  };

  it('given a run that asks to wake in 30 ms, when its interval is a minute, then the next run starts about 30 ms later', async () => {
    const { loop, runs } = runsOf(60_000, (self, run) => {
      if (run === 1) self.wakeIn(30);
    });
    loop.start();
    while (runs.length < 2) await sleep(5);
    expect(runs[1] - runs[0]).toBeGreaterThanOrEqual(25);
    expect(runs[1] - runs[0]).toBeLessThan(1_000);
  });

  it('given a loop waiting for its interval, when woken in 20 ms, then it runs then', async () => {
    const { loop, runs } = runsOf(60_000, () => undefined);
    loop.start();
    while (runs.length < 1) await sleep(5);
    loop.wakeIn(20);
    const woken = Date.now();
    while (runs.length < 2) await sleep(5);
    expect(runs[1] - woken).toBeLessThan(1_000);
  });

  it('given a loop waiting for its 50 ms interval, when asked to wake in two minutes, then it still runs at its interval', async () => {
    const { loop, runs } = runsOf(50, (self, run) => {
      if (run === 1) self.wakeIn(120_000); // during a run
    });
    loop.start();
    while (runs.length < 2) await sleep(5);
    loop.wakeIn(120_000); // between runs
    while (runs.length < 3) await sleep(5);
    expect(runs[2] - runs[0]).toBeLessThan(1_000);
  });
});

describe('PollingLoop start and stop', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('given a start while a stop waits for the run in progress, then one chain of runs goes on, and the next stop ends it', async () => {
    jest.useFakeTimers();
    let release!: () => void;
    let runs = 0;
    const loop = new PollingLoop('restart-loop', 1_000, async () => {
      runs += 1;
      if (runs === 1) await new Promise<void>((resolve) => (release = resolve));
    }, silent);
    loop.start();
    await jest.advanceTimersByTimeAsync(0); // the first run begins and waits
    expect(runs).toBe(1);

    const stopping = loop.stop(); // waits for that run
    loop.start(); // an owner starting it again meanwhile (a restart of the service's workers)
    release();
    await stopping;
    await jest.advanceTimersByTimeAsync(0);
    expect(jest.getTimerCount()).toBe(1); // one next run pending, not one per start

    await jest.advanceTimersByTimeAsync(5_000);
    expect(runs).toBeGreaterThanOrEqual(1 + 5); // it goes on: the run after the restart at once, then one a second
    expect(runs).toBeLessThanOrEqual(1 + 6); // one chain: one run a second at most
    await loop.stop();
    expect(jest.getTimerCount()).toBe(0); // nothing left to run after the stop
  });
});

describe('PollingLoop runs as metrics', () => {
  /** tally_polling_loop_runs_total of one loop, by result. */
  const runs = async (loop: string): Promise<Record<string, number>> => {
    const metric = await metricsRegistry.getSingleMetric('tally_polling_loop_runs_total')?.get();
    return Object.fromEntries((metric?.values ?? []).filter((value) => value.labels.loop === loop).map((value) => [String(value.labels.result), value.value]));
  };

  const lastSuccess = async (loop: string): Promise<number | undefined> =>
    (await metricsRegistry.getSingleMetric('tally_polling_loop_last_success_timestamp_seconds')?.get())?.values.find((value) => value.labels.loop === loop)?.value;

  it('given a purge whose runs fail and then succeed, then the failures and the successes are counted by loop, both from zero', async () => {
    // Given a loop that fails twice, then succeeds
    let calls = 0;
    let successAfter = Infinity;
    const loop = new PollingLoop('metrics-test-purge', 1, async () => {
      calls += 1;
      if (calls <= 2) throw new Error('canceling statement due to statement timeout');
      successAfter = Math.min(successAfter, Date.now());
    }, silent);
    expect(await runs('metrics-test-purge')).toEqual({ ok: 0, failed: 0 });
    expect(await lastSuccess('metrics-test-purge')).toBeUndefined(); // no success yet: no series

    // When it runs three times
    loop.start();
    while (calls < 3) await sleep(5);
    await loop.stop();

    // Then two failed runs and at least one that succeeded are counted, and the success's time is kept
    const counted = await runs('metrics-test-purge');
    expect(counted.failed).toBe(2);
    expect(counted.ok).toBeGreaterThanOrEqual(1);
    expect(await lastSuccess('metrics-test-purge')).toBeGreaterThanOrEqual(successAfter / 1000);
  });
});

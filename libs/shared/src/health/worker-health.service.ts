/**
 * Readiness of background work (Kafka consumers, relays, outboxes): a worker that cannot start, or keeps failing
 * on the same piece of work, must show in `/health/ready` and in the logs instead of retrying silently.
 */

/** Thrown by a readiness check; `details` (which consumer, partition, offset, last error…) goes into the 503 body. */
export class NotReadyError extends Error {
  constructor(
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'NotReadyError';
  }
}

/** The slice of a pino logger (or the kafka library's logger) the helpers below use. */
export interface WorkerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface StallThresholds {
  /** Stalled once the same work has failed this many times in a row… */
  afterAttempts: number;
  /** …or has kept failing for this long, whichever comes first. */
  afterMs: number;
  /**
   * For workers that report failures but not every success (a poller whose empty reads are silent): a streak
   * with no new failure for this long is over. Unset: only `succeeded` ends a streak.
   */
  quietAfterMs?: number;
}

export interface FailureStreak {
  /** What keeps failing, e.g. `{ groupId, topic, partition, offset }`; the latest attempt's. */
  where: Record<string, unknown>;
  since: string;
  lastFailedAt: string;
  attempts: number;
  lastError: string;
}

/** Consecutive failures per piece of work (e.g. per partition), and which of them count as stalled. */
export class StallDetector {
  private readonly streaks = new Map<string, { where: Record<string, unknown>; since: number; lastFailedAt: number; attempts: number; lastError: string }>();

  constructor(
    readonly thresholds: StallThresholds,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records one failed attempt; returns the streak so far (for the log line). */
  failed(key: string, where: Record<string, unknown>, error: unknown): FailureStreak {
    const now = this.now();
    const lastError = error instanceof Error ? error.message : String(error);
    const previous = this.live(key, now);
    const streak = previous
      ? { where, since: previous.since, lastFailedAt: now, attempts: previous.attempts + 1, lastError }
      : { where, since: now, lastFailedAt: now, attempts: 1, lastError };
    this.streaks.set(key, streak);
    return toStreak(streak);
  }

  succeeded(key: string): void {
    this.streaks.delete(key);
  }

  /** Drops the streaks this worker no longer owns (e.g. partitions revoked by a rebalance). */
  retain(keep: (key: string) => boolean): void {
    for (const key of [...this.streaks.keys()]) if (!keep(key)) this.streaks.delete(key);
  }

  clear(): void {
    this.streaks.clear();
  }

  stalled(): FailureStreak[] {
    const now = this.now();
    const out: FailureStreak[] = [];
    for (const key of this.streaks.keys()) {
      const streak = this.live(key, now);
      if (streak && (streak.attempts >= this.thresholds.afterAttempts || now - streak.since >= this.thresholds.afterMs)) out.push(toStreak(streak));
    }
    return out;
  }

  private live(key: string, now: number) {
    const streak = this.streaks.get(key);
    if (!streak) return undefined;
    const { quietAfterMs } = this.thresholds;
    if (quietAfterMs !== undefined && now - streak.lastFailedAt > quietAfterMs) {
      this.streaks.delete(key);
      return undefined;
    }
    return streak;
  }
}

function toStreak(streak: { where: Record<string, unknown>; since: number; lastFailedAt: number; attempts: number; lastError: string }): FailureStreak {
  return {
    where: streak.where,
    since: new Date(streak.since).toISOString(),
    lastFailedAt: new Date(streak.lastFailedAt).toISOString(),
    attempts: streak.attempts,
    lastError: streak.lastError,
  };
}

export interface BackgroundStartOptions {
  /** Names the worker in logs and readiness, e.g. "usage consumer". */
  name: string;
  start: () => Promise<void>;
  logger: WorkerLogger;
  /** First wait after a failed start; doubles up to retryMaxMs. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /**
   * A start still in progress after this long is reported not ready. Joining a Kafka group legitimately takes
   * up to the dead member's session timeout (30 s) plus a rebalance, so the default is 2 minutes.
   */
  slowAfterMs?: number;
  now?: () => number;
}

/**
 * Starts a worker without holding up the HTTP listener (joining a consumer group can take 30+ s after a crash),
 * retrying a failed start with backoff. Readiness: starting is ready (the service can serve meanwhile) until
 * `slowAfterMs`; a failed start is not ready, naming the error, until a retry succeeds.
 */
export class BackgroundStart {
  private state: 'idle' | 'starting' | 'started' | 'failed' | 'stopped' = 'idle';
  private since = 0;
  private attempts = 0;
  private lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: BackgroundStartOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Returns at once; the start runs (and is retried) in the background. */
  begin(): void {
    if (this.state !== 'idle') return;
    this.since = this.now();
    void this.attempt();
  }

  /** No further attempt; an attempt in flight finishes (the worker's own stop() undoes it). */
  stop(): void {
    this.state = 'stopped';
    clearTimeout(this.timer);
  }

  get started(): boolean {
    return this.state === 'started';
  }

  /** Throws NotReadyError when the start failed (and is being retried) or is taking too long. */
  check(): void {
    const { name, slowAfterMs = 120_000 } = this.options;
    const details = { worker: name, state: this.state, attempts: this.attempts, since: new Date(this.since).toISOString(), lastError: this.lastError };
    if (this.state === 'failed') throw new NotReadyError(`${name} failed to start (attempt ${this.attempts}, retrying): ${this.lastError}`, details);
    if (this.state === 'starting' && this.now() - this.since > slowAfterMs) {
      throw new NotReadyError(`${name} still starting after ${Math.round((this.now() - this.since) / 1000)} s`, details);
    }
  }

  /** A method, not an inline comparison: stop() may run while an attempt awaits. */
  private stopped(): boolean {
    return this.state === 'stopped';
  }

  private async attempt(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'starting';
    this.attempts += 1;
    try {
      await this.options.start();
      if (this.stopped()) return;
      this.state = 'started';
      this.lastError = undefined;
      this.options.logger.info({ worker: this.options.name, attempts: this.attempts, startMs: this.now() - this.since }, 'worker started');
    } catch (error) {
      if (this.stopped()) return;
      this.state = 'failed';
      this.lastError = error instanceof Error ? error.message : String(error);
      const { retryMinMs = 1_000, retryMaxMs = 30_000 } = this.options;
      const delayMs = Math.min(retryMaxMs, retryMinMs * 2 ** (this.attempts - 1));
      this.options.logger.error({ worker: this.options.name, attempt: this.attempts, delayMs, err: error }, 'worker failed to start: retrying');
      this.timer = setTimeout(() => void this.attempt(), delayMs);
    }
  }
}

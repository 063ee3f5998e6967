import { NotReadyError, StallDetector, type Logger, type StallThresholds } from '@tally/shared';

export interface PollingLoopReadiness {
  /** When runs that keep failing make the loop not ready (its failure streak). */
  stall: StallThresholds;
  /** A run still going after this long (PostgreSQL not answering, say) makes the loop not ready. */
  runningAfterMs: number;
  now?: () => number;
}

/** A minute of failing runs, or a run going for two: not transient any more. */
export const DEFAULT_LOOP_READINESS: PollingLoopReadiness = { stall: { afterAttempts: 5, afterMs: 60_000 }, runningAfterMs: 120_000 };

/**
 * Runs `work` every `intervalMs` (measured from the end of the previous run, so runs never overlap), logs and
 * survives failures, and stops cleanly: `stop()` resolves once the run in progress has finished. `check()` is its
 * readiness: runs that keep failing, or one that never ends, show there instead of only in the logs.
 */
export class PollingLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private runStartedAt: number | undefined;
  private active = false;
  private readonly failures: StallDetector;
  private readonly now: () => number;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly work: () => Promise<unknown>,
    private readonly logger: Logger,
    private readonly readiness: PollingLoopReadiness = DEFAULT_LOOP_READINESS,
  ) {
    this.now = readiness.now ?? Date.now;
    this.failures = new StallDetector(readiness.stall, this.now);
  }

  get started(): boolean {
    return this.active;
  }

  start(): void {
    if (this.active) return;
    this.active = true;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Throws NotReadyError when a run has been going for too long, or runs have kept failing. */
  check(): void {
    const now = this.now();
    if (this.runStartedAt !== undefined && now - this.runStartedAt >= this.readiness.runningAfterMs) {
      const since = new Date(this.runStartedAt).toISOString();
      throw new NotReadyError(`${this.name}: a run has been going for ${Math.round((now - this.runStartedAt) / 1000)} s (PostgreSQL not answering?)`, { loop: this.name, runningSince: since });
    }
    const [failing] = this.failures.stalled();
    if (failing) {
      throw new NotReadyError(`${this.name}: runs failed ${failing.attempts} times since ${failing.since}: ${failing.lastError}`, { loop: this.name, ...failing });
    }
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.runStartedAt = this.now();
      this.running = this.work()
        .then(() => this.failures.succeeded('run'))
        .catch((error: unknown) => {
          const streak = this.failures.failed('run', {}, error);
          this.logger.error({ err: error, loop: this.name, attempt: streak.attempts, failingSince: streak.since }, 'polling loop run failed');
        })
        .finally(() => {
          this.running = undefined;
          this.runStartedAt = undefined;
          if (this.active) this.schedule(this.intervalMs);
        });
    }, delayMs);
  }
}

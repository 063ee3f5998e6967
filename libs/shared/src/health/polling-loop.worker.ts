import type { Logger } from '../logging/pino.logger';
import { pollingLoopLastSuccess, pollingLoopRuns } from './health.metrics';
import { NotReadyError, StallDetector, type StallThresholds } from './worker-health.service';

export interface PollingLoopReadiness {
  /** When runs that keep failing make the loop not ready (its failure streak). */
  stall: StallThresholds;
  /**
   * A run that has made no progress for this long (PostgreSQL not answering, say) makes the loop not ready; a run
   * reports progress through the callback it is given (each batch committed), so a long backlog drained batch by batch
   * stays ready.
   */
  runningAfterMs: number;
  now?: () => number;
}

/** A minute of failing runs, or a run stuck for two: not transient any more. */
export const DEFAULT_LOOP_READINESS: PollingLoopReadiness = { stall: { afterAttempts: 5, afterMs: 60_000 }, runningAfterMs: 120_000 };

/**
 * Runs `work` every `intervalMs` (measured from the end of the previous run, so runs never overlap), logs, counts
 * (`tally_polling_loop_runs_total`) and survives failures, and stops cleanly: `stop()` resolves once the run in progress has finished. `check()` is its
 * readiness: runs that keep failing, or one that never ends, show there instead of only in the logs.
 */
export class PollingLoop {
  private timer: NodeJS.Timeout | undefined;
  /** When the pending timer fires (this.now()), while one is pending. */
  private timerAt: number | undefined;
  /** The earliest time (this.now()) a run asked the next run to start at (wakeIn), applied when the run ends. */
  private wakeRequestedAt: number | undefined;
  private running: Promise<void> | undefined;
  /** While a run is going (from before `work` is called until it has ended): when it started or last reported progress. */
  private progressAt: number | undefined;
  private active = false;
  private readonly failures: StallDetector;
  private readonly now: () => number;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly work: (progressed: () => void) => Promise<unknown>,
    private readonly logger: Logger,
    private readonly readiness: PollingLoopReadiness = DEFAULT_LOOP_READINESS,
  ) {
    this.now = readiness.now ?? Date.now;
    this.failures = new StallDetector(readiness.stall, this.now);
    // Both series from the start: "failed and never ok" is then a query, not an absent series.
    for (const result of ['ok', 'failed']) pollingLoopRuns.inc({ loop: name, result }, 0);
  }

  get started(): boolean {
    return this.active;
  }

  /**
   * Starts running now; called while a stop still waits for the run in progress, the loop goes on from that run's
   * end (scheduling one here too made two chains of runs, and the next stop ended only one of them).
   */
  start(): void {
    if (this.active) return;
    this.active = true;
    if (this.running === undefined) this.schedule(0);
    else this.wakeRequestedAt = this.now(); // the next run straight after the one under way, not an interval later
  }

  async stop(): Promise<void> {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
    this.wakeRequestedAt = undefined;
    await this.running;
  }

  /**
   * Starts the next run in `delayMs` when that comes before the interval would (something falls due then): asked
   * during a run, once it ends; between runs, by moving the pending timer earlier. Never later than the interval.
   */
  wakeIn(delayMs: number): void {
    if (!this.active || !Number.isFinite(delayMs)) return;
    const delay = Math.max(0, delayMs);
    const time = this.now() + delay;
    if (this.progressAt !== undefined) {
      this.wakeRequestedAt = Math.min(this.wakeRequestedAt ?? time, time);
      return;
    }
    if (this.timerAt !== undefined && time < this.timerAt) {
      clearTimeout(this.timer);
      this.schedule(delay);
    }
  }

  /** Throws NotReadyError when a run has made no progress for too long, or runs have kept failing. */
  check(): void {
    const now = this.now();
    if (this.progressAt !== undefined && now - this.progressAt >= this.readiness.runningAfterMs) {
      const since = new Date(this.progressAt).toISOString();
      throw new NotReadyError(`${this.name}: a run has made no progress for ${Math.round((now - this.progressAt) / 1000)} s (PostgreSQL not answering?)`, { loop: this.name, stuckSince: since });
    }
    const [failing] = this.failures.stalled();
    if (failing) {
      throw new NotReadyError(`${this.name}: runs failed ${failing.attempts} times since ${failing.since}: ${failing.lastError}`, { loop: this.name, ...failing });
    }
  }

  private schedule(delayMs: number): void {
    this.timerAt = this.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = undefined;
      this.progressAt = this.now();
      this.running = this.work(() => {
        if (this.progressAt !== undefined) this.progressAt = this.now();
      })
        .then(() => {
          pollingLoopRuns.inc({ loop: this.name, result: 'ok' });
          pollingLoopLastSuccess.set({ loop: this.name }, Date.now() / 1000);
          this.failures.succeeded('run');
        })
        .catch((error: unknown) => {
          pollingLoopRuns.inc({ loop: this.name, result: 'failed' });
          const streak = this.failures.failed('run', {}, error);
          this.logger.error({ err: error, loop: this.name, attempt: streak.attempts, failingSince: streak.since }, 'polling loop run failed');
        })
        .finally(() => {
          this.running = undefined;
          this.progressAt = undefined;
          const wake = this.wakeRequestedAt;
          this.wakeRequestedAt = undefined;
          if (this.active) this.schedule(wake === undefined ? this.intervalMs : Math.min(this.intervalMs, Math.max(0, wake - this.now())));
        });
    }, delayMs);
  }
}

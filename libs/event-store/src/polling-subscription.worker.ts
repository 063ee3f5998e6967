import type { Checkpoint, RecordedEvent, Subscription, SubscribeToAllOptions } from './event-store.port';

export interface PollingOptions {
  /** First wait after an empty read; doubles on each further empty read up to maxIdleMs. */
  minIdleMs: number;
  maxIdleMs: number;
  /** Wait after a failed read or a failed onEvents before trying again. */
  errorBackoffMs: number;
}

export const DEFAULT_POLLING: PollingOptions = { minIdleMs: 50, maxIdleMs: 250, errorBackoffMs: 1_000 };
const DEFAULT_BATCH_SIZE = 500;

/** Something that wakes the poller early (e.g. LISTEN/NOTIFY); optional, polling alone is always correct. */
export interface WakeUpSource {
  start(wake: () => void, onError: (e: Error) => void): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Tails a store through `read(after, limit)`: delivers batches in order, sequentially, and only advances its
 * checkpoint after onEvents resolves, so a failing handler sees the same batch again rather than losing it.
 */
export class PollingSubscription implements Subscription {
  private stopped = false;
  private notified = false;
  private wakeSleeper: (() => void) | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly read: (after: Checkpoint, limit: number) => Promise<RecordedEvent[]>,
    private readonly opts: SubscribeToAllOptions,
    private readonly polling: PollingOptions = DEFAULT_POLLING,
    private readonly wakeUp?: WakeUpSource,
  ) {
    this.done = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.done;
  }

  private async run(): Promise<void> {
    if (this.wakeUp) {
      // Without the wake-up source we are merely slower (up to maxIdleMs), so its failure is only reported.
      await this.wakeUp.start(() => this.wake(), (e) => this.report(e)).catch((e) => this.report(e));
    }
    try {
      await this.loop();
    } finally {
      await this.wakeUp?.stop().catch((e) => this.report(e));
    }
  }

  private async loop(): Promise<void> {
    const batchSize = this.opts.batchSize ?? DEFAULT_BATCH_SIZE;
    let checkpoint = this.opts.after;
    let idleMs = this.polling.minIdleMs;
    while (!this.stopped) {
      let batch: RecordedEvent[];
      try {
        this.notified = false;
        batch = await this.read(checkpoint, batchSize);
      } catch (e) {
        this.report(e);
        await this.sleep(this.polling.errorBackoffMs);
        continue;
      }
      if (this.stopped) return;
      if (batch.length === 0) {
        await this.sleep(idleMs);
        idleMs = Math.min(idleMs * 2, this.polling.maxIdleMs);
        continue;
      }
      idleMs = this.polling.minIdleMs;
      try {
        await this.opts.onEvents(batch);
        checkpoint = batch[batch.length - 1].checkpoint;
      } catch (e) {
        this.report(e);
        await this.sleep(this.polling.errorBackoffMs);
      }
    }
  }

  private wake(): void {
    this.notified = true;
    this.wakeSleeper?.();
  }

  private sleep(ms: number): Promise<void> {
    // A notification that arrived while we were reading means there may be more to read: skip the wait.
    if (this.stopped || this.notified) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      this.wakeSleeper = done;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    }).then(() => {
      this.wakeSleeper = undefined;
    });
  }

  private report(e: unknown): void {
    const error = e instanceof Error ? e : new Error(String(e));
    try {
      this.opts.onError?.(error);
    } catch {
      // A throwing error handler must not kill the subscription.
    }
  }
}

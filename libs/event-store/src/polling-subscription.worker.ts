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
export class PollingSubscription<E extends Pick<RecordedEvent, 'checkpoint'> = RecordedEvent> implements Subscription {
  private stopped = false;
  private notified = false;
  private wakeSleeper: (() => void) | undefined;
  /** Ends the error backoff under way, if any: only stop() does (see backOff). */
  private endBackoff: (() => void) | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly read: (after: Checkpoint, limit: number) => Promise<E[]>,
    private readonly opts: SubscribeToAllOptions<E>,
    private readonly polling: PollingOptions = DEFAULT_POLLING,
    private readonly wakeUp?: WakeUpSource,
  ) {
    this.done = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    this.endBackoff?.();
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

  /**
   * Reads ahead: while onEvents handles a full page, the page after it is already being read (a read has no
   * effect, so it is safe to start early). It is used only once onEvents succeeded; after a failure it is dropped
   * and the failed batch is read again from the checkpoint. A page that was not full means the tail is reached:
   * nothing is read ahead of it, the loop polls (or is woken) as usual.
   */
  private async loop(): Promise<void> {
    const batchSize = this.opts.batchSize ?? DEFAULT_BATCH_SIZE;
    let checkpoint = this.opts.after;
    let idleMs = this.polling.minIdleMs;
    let ahead: Promise<E[]> | undefined;
    while (!this.stopped) {
      let batch: E[];
      try {
        batch = await (ahead ?? this.readFrom(checkpoint, batchSize));
      } catch (e) {
        ahead = undefined;
        this.report(e);
        await this.backOff();
        continue;
      }
      ahead = undefined;
      if (this.stopped) return;
      if (batch.length === 0) {
        this.caughtUp();
        await this.sleep(idleMs);
        idleMs = Math.min(idleMs * 2, this.polling.maxIdleMs);
        continue;
      }
      idleMs = this.polling.minIdleMs;
      const next = batch[batch.length - 1].checkpoint;
      const readAhead = batch.length >= batchSize ? this.readFrom(next, batchSize) : undefined;
      // Its failure is seen when (and if) it is awaited; until then it must not count as unhandled.
      readAhead?.catch(() => undefined);
      try {
        await this.opts.onEvents(batch);
        checkpoint = next;
        ahead = readAhead;
      } catch (e) {
        this.report(e);
        await this.backOff();
      }
    }
  }

  /** A notification that arrives from here on may concern events this read misses: sleep() will not wait after it. */
  private readFrom(after: Checkpoint, limit: number): Promise<E[]> {
    this.notified = false;
    return this.read(after, limit);
  }

  private wake(): void {
    this.notified = true;
    this.wakeSleeper?.();
  }

  /**
   * The wait after a failure: the whole errorBackoffMs whatever notifications come (every append notifies, so under
   * load a failing read or onEvents would otherwise be retried as often as events are appended); stop() ends it.
   */
  private backOff(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return wait(this.polling.errorBackoffMs, (end) => (this.endBackoff = end)).then(() => {
      this.endBackoff = undefined;
    });
  }

  private sleep(ms: number): Promise<void> {
    // A notification that arrived while we were reading means there may be more to read: skip the wait.
    if (this.stopped || this.notified) return Promise.resolve();
    return wait(ms, (end) => (this.wakeSleeper = end)).then(() => {
      this.wakeSleeper = undefined;
    });
  }

  private caughtUp(): void {
    try {
      this.opts.onCaughtUp?.();
    } catch (e) {
      this.report(e);
    }
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

/** Waits `ms`; `hold` is given the function that ends the wait early. */
function wait(ms: number, hold: (end: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(end, ms);
    hold(end);
    function end(): void {
      clearTimeout(timer);
      resolve();
    }
  });
}

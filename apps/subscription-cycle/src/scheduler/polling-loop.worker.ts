import type { Logger } from '@tally/shared';

/**
 * Runs `work` every `intervalMs` (measured from the end of the previous run, so runs never overlap), logs and
 * survives failures, and stops cleanly: `stop()` resolves once the run in progress has finished.
 */
export class PollingLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private active = false;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly work: () => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

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

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.running = this.work()
        .then(() => undefined)
        .catch((error: unknown) => this.logger.error({ err: error, loop: this.name }, 'polling loop run failed'))
        .finally(() => {
          this.running = undefined;
          if (this.active) this.schedule(this.intervalMs);
        });
    }, delayMs);
  }
}

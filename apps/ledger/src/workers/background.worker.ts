import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { Logger } from 'pino';
import { BackgroundStart, type HealthChecks } from '@tally/shared';
import { LOGGER } from '../database/tokens.provider';

/** What the ledger runs in the background besides its Kafka consumers (KafkaBatchTransport): the relay, the expiry worker. */
export interface BackgroundWorker {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Readiness without I/O: throws a NotReadyError when stalled. */
  checkFlowing(): void;
}

/** Readiness lists the workers in this order, whatever order their modules happened to be built in. */
const READINESS_ORDER = ['expiry', 'relay'];
const rank = (name: string): number => (READINESS_ORDER.includes(name) ? READINESS_ORDER.indexOf(name) : READINESS_ORDER.length);

/**
 * The write side's background work other than Kafka consumers (the hold-expiry worker, the relay), each added by
 * its own module, run when WORKERS names it. The Kafka consumers are controllers on the KafkaBatchTransport
 * (ledger.kafka.transport.ts), started and closed with the app's microservices.
 * Started in the background (never awaited before the HTTP listener), a failed start retried and shown in
 * readiness; stopped first on SIGTERM (beforeApplicationShutdown).
 */
@Injectable()
export class BackgroundWorkers implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly workers: BackgroundWorker[] = [];
  /** Readiness checks of the workers this process runs, by name. */
  private readonly checks: HealthChecks = {};
  private readonly starts: BackgroundStart[] = [];

  constructor(@Inject(LOGGER) private readonly logger: Logger) {}

  /** Runs `worker` in the background when `enabled` (WORKERS names it); it is stopped on shutdown either way. */
  add(name: string, worker: BackgroundWorker, enabled: boolean): void {
    this.workers.push(worker);
    if (!enabled) return;
    const start = new BackgroundStart({ name, start: () => worker.start(), logger: this.logger });
    this.starts.push(start);
    this.checks[name] = () => {
      start.check();
      worker.checkFlowing();
    };
  }

  onApplicationBootstrap(): void {
    for (const start of this.starts) start.begin();
  }

  /** For /health/ready: each worker started (or still joining) and flowing, not stalled. */
  healthChecks(): HealthChecks {
    return Object.fromEntries(Object.entries(this.checks).sort(([a], [b]) => rank(a) - rank(b)));
  }

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    this.logger.info({ signal }, 'stopping workers');
    for (const start of this.starts) start.stop();
    await Promise.all(this.workers.map((worker) => worker.stop()));
  }
}

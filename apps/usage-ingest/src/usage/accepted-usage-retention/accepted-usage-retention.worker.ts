import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { CLOCK, LOGGER, PollingLoop, quoteIdentifier, type Clock, type Logger } from '@tally/shared';
import { UsageIngestConfig } from '../../config/usage-ingest.config';
import { retentionOverdueSources, type RetentionOverdueSource } from './accepted-usage-retention.metrics';

/** Rows deleted per statement, each in its own short transaction (the table is written by every usage report). */
const BATCH = 5_000;
const DAY_MS = 24 * 3600 * 1000;

/**
 * Forgets accepted usage ids older than ACCEPTED_USAGE_RETENTION_DAYS, and the rows of requests older than that
 * whose produce never ended (their reservations forgotten with them): without it `accepted_usage` grows by a row per
 * usage for ever, and with it every report's insert and lookup. What is forgotten is safe to forget: the ledger
 * remembers every usage id and applies each once, so an id sent again afterwards is produced again and changes
 * nothing there (other content under it is dead-lettered, IDEMPOTENCY_CONFLICT).
 *
 * Every instance runs it; one deletes at a time (a transaction-scoped advisory lock per batch: another instance that
 * finds it taken skips its pass). It runs on a PollingLoop: a failed pass is logged and counted, and the next interval
 * tries again; passes that keep failing or fall behind show in `tally_usage_ingest_retention_overdue_seconds` (alert
 * TallyUsageRetentionBehind) and in the loop's runs (TallyHousekeepingFailing).
 */
@Injectable()
export class AcceptedUsageRetentionWorker implements OnApplicationBootstrap, OnApplicationShutdown, RetentionOverdueSource {
  /** A pass at start-up, then one every ACCEPTED_USAGE_PRUNE_INTERVAL_MS (its runs counted: TallyHousekeepingFailing). */
  private readonly loop: PollingLoop;
  /** Shut down: a pass under way ends after its current batch. */
  private stopped = false;

  constructor(
    private readonly db: DataSource,
    private readonly config: UsageIngestConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.loop = new PollingLoop('accepted-usage-retention', config.ACCEPTED_USAGE_PRUNE_INTERVAL_MS, () => this.pass(), logger);
  }

  onApplicationBootstrap(): void {
    retentionOverdueSources.add(this);
    this.loop.start();
  }

  async onApplicationShutdown(): Promise<void> {
    retentionOverdueSources.delete(this);
    this.stopped = true;
    await this.loop.stop();
  }

  /**
   * Seconds the oldest id or unfinished request past the retention has waited beyond one pass interval (a row falls due
   * between passes and waits up to an interval as a matter of course); 0 when none has.
   */
  async overdueSeconds(): Promise<number> {
    const schema = quoteIdentifier(this.config.DATABASE_SCHEMA);
    // accepted_at is indexed (one probe); ingest_requests holds only requests whose produce did not end (a few, or
    // after a Kafka outage as many as it refused), read whole.
    const [{ overdue }] = await this.db.query(
      `SELECT extract(epoch FROM $1::timestamptz - least((SELECT min(accepted_at) FROM ${schema}.accepted_usage), (SELECT min(started_at) FROM ${schema}.ingest_requests)))::float8 AS overdue`,
      [this.cutoff()],
    );
    return Math.max(0, (overdue ?? 0) - this.config.ACCEPTED_USAGE_PRUNE_INTERVAL_MS / 1000);
  }

  private cutoff(): Date {
    return new Date(this.clock.now().getTime() - this.config.ACCEPTED_USAGE_RETENTION_DAYS * DAY_MS);
  }

  /** One pass: deletes what is older than the retention, batch by batch; how many ids and requests it forgot. */
  async prune(): Promise<{ usage: number; requests: number }> {
    const cutoff = this.cutoff();
    const schema = quoteIdentifier(this.config.DATABASE_SCHEMA);
    const forgotten = { usage: 0, requests: 0 };
    for (const [table, column, counted] of [['accepted_usage', 'accepted_at', 'usage'], ['ingest_requests', 'started_at', 'requests']] as const) {
      for (;;) {
        const deleted = await this.db.transaction(async (tx) => {
          const [{ locked }] = await tx.query(`SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked`, [`${this.config.DATABASE_SCHEMA}.accepted_usage_retention`]);
          if (!locked) return -1; // another instance is pruning
          const [, count] = (await tx.query(
            `DELETE FROM ${schema}.${table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${schema}.${table} WHERE ${column} < $1 LIMIT ${BATCH}))`,
            [cutoff],
          )) as [unknown, number];
          return count;
        });
        if (deleted < 0) return forgotten;
        forgotten[counted] += deleted;
        if (deleted < BATCH || this.stopped) break;
      }
    }
    return forgotten;
  }

  private async pass(): Promise<void> {
    const forgotten = await this.prune();
    if (forgotten.usage + forgotten.requests > 0) this.logger.info({ ...forgotten, retentionDays: this.config.ACCEPTED_USAGE_RETENTION_DAYS }, 'accepted usage ids forgotten');
  }
}

import { MetricSources, firstReading, scrapeTimeGauges } from '@tally/metrics';

/** Reads, at scrape time, how far the expiry worker is behind its schedule. */
export interface ExpiryBacklogSource {
  backlog(): Promise<{ rows: number; oldestSeconds: number }>;
}

/** The expiry workers of this process (one, when WORKERS names `commands`). */
export const expiryBacklogSources = new MetricSources<ExpiryBacklogSource>();

/** Counting stops here: a longer backlog is reported as this many (the count stays cheap). */
export const EXPIRY_BACKLOG_COUNT_LIMIT = 10_000;

scrapeTimeGauges(() => firstReading(expiryBacklogSources, (source) => source.backlog()), [
  {
    name: 'tally_expiry_due_rows',
    help: `Rows of the expiry schedule due and not yet taken by the worker (holds past their TTL, grants past their expiry, and rows of items already closed; counted up to ${EXPIRY_BACKLOG_COUNT_LIMIT}).`,
    value: (backlog) => backlog.rows,
  },
  {
    name: 'tally_expiry_oldest_due_seconds',
    help: 'How long ago the oldest row still waiting first came due (due and not taken, or taken and not done: looked at again, failing; 0 when none): holds past their TTL still reserve credits, expired promotions are still spendable.',
    value: (backlog) => backlog.oldestSeconds,
  },
]);

import { MetricSources, firstReading, scrapeTimeGauges } from '@tally/metrics';

/** Reads, at scrape time, how long what the retention should have forgotten has been due. */
export interface RetentionOverdueSource {
  overdueSeconds(): Promise<number>;
}

/** The retention worker of this process (each usage-ingest instance runs one; they read the same tables). */
export const retentionOverdueSources = new MetricSources<RetentionOverdueSource>();

scrapeTimeGauges(() => firstReading(retentionOverdueSources, (source) => source.overdueSeconds()), [
  {
    name: 'tally_usage_ingest_retention_overdue_seconds',
    help:
      'How long the oldest accepted usage id (or unfinished request) older than ACCEPTED_USAGE_RETENTION_DAYS has waited to be ' +
      'forgotten beyond one ACCEPTED_USAGE_PRUNE_INTERVAL_MS; 0 when none has. Growing: retention passes fail or fall behind, and ' +
      'accepted_usage grows with every report.',
    value: (seconds) => seconds,
  },
]);

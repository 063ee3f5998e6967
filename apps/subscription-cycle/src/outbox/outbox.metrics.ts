import { MetricSources, counter, firstReading, scrapeTimeGauges } from '@tally/metrics';

export interface OutboxBacklog {
  /** Unpublished messages. */
  depth: number;
  /** Age of the oldest unpublished message; 0 when none. */
  oldestAgeSeconds: number;
}

/** Reads the outbox backlog at scrape time (the partial index on unpublished rows keeps it cheap). */
export interface OutboxBacklogSource {
  backlog(): Promise<OutboxBacklog>;
}

export const outboxBacklogSources = new MetricSources<OutboxBacklogSource>();

scrapeTimeGauges(() => firstReading(outboxBacklogSources, (source) => source.backlog()), [
  { name: 'tally_outbox_depth_messages', help: 'Outbox messages of subscription-cycle not yet published to Kafka.', value: (backlog) => backlog.depth },
  { name: 'tally_outbox_oldest_age_seconds', help: 'Age of the oldest unpublished outbox message (0 when the outbox is empty).', value: (backlog) => backlog.oldestAgeSeconds },
]);

export const outboxPublished = counter({
  name: 'tally_outbox_published_messages_total',
  help: 'Outbox messages published to Kafka and stamped published.',
});

export const outboxPublishFailures = counter({
  name: 'tally_outbox_publish_failures_total',
  help: 'Outbox relay runs that failed (publish or stamp), retried on the next run.',
});

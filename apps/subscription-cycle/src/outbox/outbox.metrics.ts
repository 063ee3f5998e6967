import { MetricSources, counter, gauge } from '@tally/metrics';

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

async function readBacklog(): Promise<OutboxBacklog | undefined> {
  for (const source of outboxBacklogSources) {
    // PostgreSQL down: left out of this scrape (readiness says why).
    return source.backlog().catch(() => undefined);
  }
  return undefined;
}

gauge({
  name: 'tally_outbox_depth_messages',
  help: 'Outbox messages of subscription-cycle not yet published to Kafka.',
  async collect() {
    this.reset();
    const backlog = await readBacklog();
    if (backlog) this.set(backlog.depth);
  },
});

gauge({
  name: 'tally_outbox_oldest_age_seconds',
  help: 'Age of the oldest unpublished outbox message (0 when the outbox is empty).',
  async collect() {
    this.reset();
    const backlog = await readBacklog();
    if (backlog) this.set(backlog.oldestAgeSeconds);
  },
});

export const outboxPublished = counter({
  name: 'tally_outbox_published_messages_total',
  help: 'Outbox messages published to Kafka and stamped published.',
});

export const outboxPublishFailures = counter({
  name: 'tally_outbox_publish_failures_total',
  help: 'Outbox relay runs that failed (publish or stamp), retried on the next run.',
});

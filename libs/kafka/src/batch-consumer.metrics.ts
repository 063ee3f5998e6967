import { LATENCY_BUCKETS_SECONDS, MetricSources, counter, errorClass, gauge, histogram } from '@tally/metrics';

/** One partition a consumer owns, as a scrape sees it. */
export interface PartitionMetrics {
  topic: string;
  partition: number;
  /** High watermark (last fetch, or the broker asked at scrape time) − the next offset to apply; 0 when caught up. */
  lag: number;
  /** Broker timestamp (ms) of the last message applied (committed or skipped as a redelivery); undefined before the first. */
  lastMessageAt?: number;
  stalled: boolean;
}

/** What a running BatchConsumer reports at scrape time (no I/O: what it learnt from its last fetch and commit). */
export interface ConsumerMetricsSource {
  readonly groupId: string;
  partitionMetrics(): Iterable<PartitionMetrics>;
  /** Topics the consumer is bound to that the cluster does not have (not read until they appear). */
  missingTopics(): readonly string[];
}

/** The running consumers of this process; a consumer adds itself on start and leaves on stop. */
export const consumerMetricSources = new MetricSources<ConsumerMetricsSource>();

const PARTITION_LABELS = ['group', 'topic', 'partition'] as const;

function collectPartitions(set: (labels: { group: string; topic: string; partition: string }, partition: PartitionMetrics) => void): void {
  for (const source of consumerMetricSources) {
    for (const partition of source.partitionMetrics()) set({ group: source.groupId, topic: partition.topic, partition: String(partition.partition) }, partition);
  }
}

gauge({
  name: 'tally_kafka_consumer_lag_messages',
  help: 'Messages of the partition not yet applied by the group: high watermark (at the last fetch, or asked at scrape time at most every 10 s) minus the next offset to apply.',
  labelNames: PARTITION_LABELS,
  collect() {
    this.reset();
    collectPartitions((labels, { lag }) => this.set(labels, lag));
  },
});

gauge({
  name: 'tally_kafka_consumer_last_message_age_seconds',
  help: 'Age of the last message the group applied on the partition (broker timestamp); with lag > 0, how far behind in time it is.',
  labelNames: PARTITION_LABELS,
  collect() {
    this.reset();
    const now = Date.now();
    collectPartitions((labels, { lastMessageAt }) => {
      if (lastMessageAt !== undefined) this.set(labels, Math.max(0, (now - lastMessageAt) / 1000));
    });
  },
});

gauge({
  name: 'tally_kafka_consumer_stalled',
  help: '1 while the partition keeps failing on the same batch (the StallDetector thresholds; /health/ready is 503 meanwhile), else 0.',
  labelNames: PARTITION_LABELS,
  collect() {
    this.reset();
    collectPartitions((labels, { stalled }) => this.set(labels, stalled ? 1 : 0));
  },
});

gauge({
  name: 'tally_kafka_consumer_topic_missing',
  help: "1 for each extra topic the group is bound to (a product's own usage topic, USAGE_TOPIC_NAMESPACES) that the cluster does not have: the group reads its other topics and subscribes to this one once it is created (checked every minute).",
  labelNames: ['group', 'topic'],
  collect() {
    this.reset();
    for (const source of consumerMetricSources) for (const topic of source.missingTopics()) this.set({ group: source.groupId, topic }, 1);
  },
});

const batches = counter({
  name: 'tally_kafka_consumer_batches_total',
  help: 'Transactions committed by the group on the partition (one per chunk of a fetched batch).',
  labelNames: PARTITION_LABELS,
});

const messages = counter({
  name: 'tally_kafka_consumer_messages_total',
  help: 'Messages applied and committed by the group on the partition (dead letters and skipped redeliveries excluded).',
  labelNames: PARTITION_LABELS,
});

const failures = counter({
  name: 'tally_kafka_consumer_failures_total',
  help: 'Failed attempts to apply a batch (rolled back, to be retried), by error class (connection, conflict, database, kafka, timeout, other).',
  labelNames: [...PARTITION_LABELS, 'reason'],
});

const deadLetters = counter({
  name: 'tally_kafka_consumer_dead_letters_total',
  help: 'Messages sent to the dead-letter topic (or dropped when none is configured), by reason code.',
  labelNames: ['group', 'topic', 'reason'],
});

const lostOffsets = counter({
  name: 'tally_kafka_consumer_lost_offsets_total',
  help: 'Offsets after the one stored in PostgreSQL that Kafka no longer held when the consumer resumed (deleted by retention): messages never applied.',
  labelNames: [...PARTITION_LABELS],
});

const passedOver = counter({
  name: 'tally_kafka_consumer_replays_passed_over_total',
  help: "Replayed dead letters another group failed (x-replay-for-group), passed over by this group, which applied them the first time (only on topics whose writers are all trusted).",
  labelNames: ['group', 'topic'],
});

const groupJoins = counter({
  name: 'tally_kafka_consumer_group_joins_total',
  help: 'Times a member of the group in this process joined it: one at start, then one per rebalance. Rising steadily: members evicted or restarting (a rebalance storm).',
  labelNames: ['group'],
});

const batchDuration = histogram({
  name: 'tally_kafka_consumer_batch_duration_seconds',
  help: 'Time to apply and commit one transaction of the group (from BEGIN to COMMIT).',
  labelNames: ['group', 'topic'],
  buckets: LATENCY_BUCKETS_SECONDS,
});

const waitBeforeTransaction = histogram({
  name: 'tally_kafka_consumer_wait_seconds',
  help:
    "How long a partition's chunk waited before the transaction that committed it began, from its oldest message's broker timestamp: " +
    "the fetch, the group's earlier transactions and the event loop. With batch_duration: where a message's time from produce to commit goes.",
  labelNames: ['group', 'topic'],
  buckets: LATENCY_BUCKETS_SECONDS,
});

/** Counters of one consumer group, bound to their labels once (the hot path increments per batch, never per message). */
export class ConsumerCounters {
  private readonly partitions = new Map<string, { batches: ReturnType<typeof batches.labels>; messages: ReturnType<typeof messages.labels> }>();

  constructor(private readonly groupId: string) {}

  /** A chunk committed: `seconds` its transaction took, `waitedSeconds` its oldest message waited before that began. */
  committed(topic: string, partition: number, applied: number, seconds: number, waitedSeconds: number): void {
    const key = `${topic}:${partition}`;
    let bound = this.partitions.get(key);
    if (!bound) {
      const labels = { group: this.groupId, topic, partition: String(partition) };
      bound = { batches: batches.labels(labels), messages: messages.labels(labels) };
      this.partitions.set(key, bound);
    }
    bound.batches.inc();
    if (applied > 0) bound.messages.inc(applied);
    batchDuration.observe({ group: this.groupId, topic }, seconds);
    waitBeforeTransaction.observe({ group: this.groupId, topic }, waitedSeconds);
  }

  failed(topic: string, partition: number, error: unknown): void {
    failures.inc({ group: this.groupId, topic, partition: String(partition), reason: errorClass(error) });
  }

  /** `count` offsets after the stored one were deleted from Kafka before they were applied. */
  lost(topic: string, partition: number, count: bigint): void {
    lostOffsets.inc({ group: this.groupId, topic, partition: String(partition) }, Number(count));
  }

  passedOver(topic: string): void {
    passedOver.inc({ group: this.groupId, topic });
  }

  joined(): void {
    groupJoins.inc({ group: this.groupId });
  }

  deadLettered(topic: string, reason: string): void {
    deadLetters.inc({ group: this.groupId, topic, reason });
  }
}

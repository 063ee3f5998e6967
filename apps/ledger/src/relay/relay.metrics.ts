import type { Pool } from 'pg';
import { MetricSources, counter, firstReading, scrapeTimeGauges } from '@tally/metrics';
import { quoteIdentifier } from '@tally/shared';

/** Reads, at scrape time, how far the relay is behind the event store. */
export interface RelayLagSource {
  lag(): Promise<{ events: number; seconds: number }>;
}

/** The relays of this process (one, when WORKERS names `relay` and the event store is PostgreSQL). */
export const relayLagSources = new MetricSources<RelayLagSource>();

/** Counting stops here: a relay further behind than this is reported as this many (the count stays cheap). */
export const RELAY_LAG_COUNT_LIMIT = 100_000;

scrapeTimeGauges(() => firstReading(relayLagSources, (source) => source.lag()), [
  {
    name: 'tally_relay_lag_events',
    help: `Events in the event store the relay has not yet published to ledger.events.v1 (counted up to ${RELAY_LAG_COUNT_LIMIT}).`,
    value: (lag) => lag.events,
  },
  { name: 'tally_relay_lag_seconds', help: 'Age of the oldest event the relay has not yet published (0 when it is caught up).', value: (lag) => lag.seconds },
]);

/** Reads, at scrape time, how full PostgreSQL's NOTIFY queue is (the cluster's, shared by every database). */
export interface NotifyQueueSource {
  usage(): Promise<number>;
}

/** The ledger processes that hold a relay (leading or standing by): each reads the one cluster-wide figure. */
export const notifyQueueSources = new MetricSources<NotifyQueueSource>();

scrapeTimeGauges(() => firstReading(notifyQueueSources, (source) => source.usage()), [
  {
    name: 'tally_postgres_notify_queue_usage_ratio',
    help:
      "How full PostgreSQL's NOTIFY queue is (pg_notification_queue_usage(), 0 to 1; 8 GB by default). A listening session that stops " +
      'reading (left idle in a transaction) holds every later notification; at 1, each transaction that notifies fails at COMMIT: ' +
      "the ledger's appends and the projection's balance notifications.",
    value: (usage) => usage,
  },
]);

/** The NOTIFY queue's fill, from any session of the cluster. */
export function postgresNotifyQueue(pool: Pool): NotifyQueueSource {
  return {
    usage: async () => (await pool.query<{ usage: number }>('select pg_notification_queue_usage()::float8 as usage')).rows[0].usage,
  };
}

export const relayPublished = counter({
  name: 'tally_relay_published_events_total',
  help: 'Events the relay published to ledger.events.v1 (a crash between publishing and the checkpoint publishes a few again).',
});

export const relayPublishFailures = counter({
  name: 'tally_relay_publish_failures_total',
  help: 'Failed relay batches (publish or checkpoint), retried from the checkpoint.',
});

/**
 * The PostgreSQL event store's lag behind the relay checkpoint `(transaction id, global position)`, as the relay
 * tails it: pending events and the age of the oldest (its transaction's start, `recorded_at`). Counts at most
 * RELAY_LAG_COUNT_LIMIT rows, read in the index's order (events_transaction_position_idx) from the checkpoint on:
 * without the ORDER BY, the planner took 15–22% of the table for pending and, past 1–2 M events, chose a
 * sequential scan to find RELAY_LAG_COUNT_LIMIT of them; the pending ones are the newest, so every scrape read the
 * whole table (1.2–1.6 s at 4.4 M events; docs/benchmarks.md session 32).
 */
export function postgresRelayLag(pool: Pool, schema: string, relayName: string): RelayLagSource {
  const sql = relayLagSql(schema);
  return {
    lag: async () => {
      const { rows } = await pool.query<{ events: number; seconds: number }>(sql, [relayName]);
      return { events: rows[0].events, seconds: Math.max(0, rows[0].seconds) };
    },
  };
}

/** postgresRelayLag's query; `$1` is the relay's name. */
export function relayLagSql(schema: string): string {
  const s = quoteIdentifier(schema);
  // Checkpoints are zero-padded decimals; xid8's input would read a leading zero as octal, so go through numeric.
  return `
    with checkpoint as (
      select coalesce((select checkpoint from ${s}.relay_checkpoints where name = $1), '') as value
    ), position as (
      select case when value = '' then '0'::xid8 else (split_part(value, '-', 1)::numeric)::text::xid8 end as transaction_id,
             case when value = '' then 0::bigint else split_part(value, '-', 2)::bigint end as global_position
      from checkpoint
    )
    select count(*)::int as events, coalesce(extract(epoch from now() - min(pending.recorded_at)), 0)::float8 as seconds
    from (
      select e.recorded_at from ${s}.events e, position p
      where (e.transaction_id, e.global_position) > (p.transaction_id, p.global_position)
      order by e.transaction_id, e.global_position
      limit ${RELAY_LAG_COUNT_LIMIT}
    ) pending`;
}

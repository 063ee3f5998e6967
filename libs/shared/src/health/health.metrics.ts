import { counter, gauge } from '../metrics/process.metrics';

/**
 * The outcome of the last readiness evaluation, per check (postgres, kafka, each consumer, relay, outbox…): set each
 * time `GET /health/ready` answers (the kubelet's readiness probe asks every 10 s), not at scrape time, so a scrape
 * never waits on PostgreSQL or Kafka.
 */
const healthCheckUp = gauge({
  name: 'tally_health_check_up',
  help: 'Last GET /health/ready outcome per check: 1 up, 0 down (the 503 body says why). Updated when readiness is asked.',
  labelNames: ['check'],
});

export function recordHealthChecks(checks: Record<string, { status: string }> | undefined): void {
  for (const [check, { status }] of Object.entries(checks ?? {})) healthCheckUp.set({ check }, status === 'up' ? 1 : 0);
}

/**
 * Runs of each polling loop (expiry, the cycle scheduler, the outbox, and the purges that keep tables from growing for
 * ever), by result. The purges have no readiness of their own (a failing purge is no reason to stop serving): their
 * failures show here, and in alert TallyHousekeepingFailing.
 */
export const pollingLoopRuns = counter({
  name: 'tally_polling_loop_runs_total',
  help: 'Runs of each polling loop (expiry, cycle-scheduler, outbox-relay, the purges), by result: ok or failed (the log says why).',
  labelNames: ['loop', 'result'],
});

/**
 * When each polling loop last ran without failing (Unix seconds); no series until one has. Alert
 * TallyHousekeepingFailing reads it beside the run counter: the counter's increase() misses runs before the first
 * scrape (a purge's first run is at start-up), and this time alone misses a loop that never succeeds on a new instance.
 */
export const pollingLoopLastSuccess = gauge({
  name: 'tally_polling_loop_last_success_timestamp_seconds',
  help: 'When each polling loop last ran without failing (Unix seconds); no series until one has.',
  labelNames: ['loop'],
});

/**
 * The HTTP path end to end, which is how product services report usage: usage-ingest (POST /v1/usage-events in
 * batches of 100, at max rate) → usage.events.v1 → the ledger (decide, append with offsets) → relay →
 * ledger.events.v1 → the projection → the balance read model. Everything shares the two cores, as in production.
 */
import { knobs, log, performance } from './bench.harness';
import type { BenchRun } from './bench.harness';
import { postUsageBatches, startIngest } from './http.bench';
import { waitForLedgerIdle, type LedgerStage } from './ledger-throughput.bench';

export interface HttpPathResult {
  events: number;
  /** Events usage-ingest accepted per second while the load ran. */
  acceptedPerSec: number;
  /** Events per second from the first request until the balance read model reflected the last one. */
  eventsPerSec: number;
  /** Seconds after the load ended until the balances caught up (the backlog the load left). */
  drainSeconds: number;
  httpP99: number;
  errors: number;
}

export async function measureHttpPath(ctx: BenchRun, stage: LedgerStage): Promise<HttpPathResult> {
  await waitForLedgerIdle(ctx, stage);
  const started = await startIngest(ctx, stage.env.USAGE_EVENTS_TOPIC);
  const seconds = knobs.seconds;
  log(`HTTP path: POST /v1/usage-events (100 per request, 10 connections, ${seconds} s) into the ledger's topic, until the balances reflect every event`);
  const t0 = performance.now();
  const { result, accepted } = await postUsageBatches(ctx, started, stage.accounts, 'path', 100, seconds);
  const loadEnded = performance.now();
  await started.ingest.kill();
  const drainSeconds = await waitForLedgerIdle(ctx, stage);
  const totalSeconds = (performance.now() - t0) / 1000;
  const outcome: HttpPathResult = {
    events: accepted,
    acceptedPerSec: accepted / ((loadEnded - t0) / 1000),
    eventsPerSec: accepted / totalSeconds,
    drainSeconds,
    httpP99: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
  };
  log(`  → ${accepted} events: accepted at ${outcome.acceptedPerSec.toFixed(0)}/s, in the balances at ${outcome.eventsPerSec.toFixed(0)}/s end to end (drained ${drainSeconds.toFixed(1)} s after the load)`);
  return outcome;
}

/**
 * The HTTP path end to end, which is how product services report usage: usage-ingest (POST /v1/usage-events in
 * batches of 100, at max rate) → usage.events.v1 → the ledger (decide, append with offsets) → relay →
 * ledger.events.v1 → the projection → the balance read model. Everything shares the two cores, as in production.
 */
import { cpuMicrosEach, cpuSeconds, cpuSecondsOfProcesses, knobs, log, ownCpuSeconds, performance } from './bench.harness';
import type { BenchRun } from './bench.harness';
import { micros, postUsageBatches, startIngest } from './http.bench';
import { clientMicros, clientsText, cpuByClient, readBackendCpu } from './postgres-clients.harness';
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
  /**
   * Each process's CPU from the first request until the balances caught up, in µs per accepted usage (undefined where
   * it was not read): where an HTTP-reported usage's cost goes, next to the Kafka-direct row's "CPU … a usage".
   * `bench` is this process (the load generator, autocannon, and the wait for the balances).
   */
  cpuMicros: { ingest?: number; ledger?: number; projector?: number; postgres?: number; kafka?: number; bench?: number };
  /** PostgreSQL's CPU by the client whose session it served (`application_name`), µs per accepted usage; `other` what no session took. */
  postgresByClient: Record<string, number>;
}

/** The sum of `cpuMicros`, when every process was read. */
export function httpPathCpuTotal(cpu: HttpPathResult['cpuMicros']): number | undefined {
  const parts = [cpu.ingest, cpu.ledger, cpu.projector, cpu.postgres, cpu.kafka, cpu.bench];
  return parts.some((part) => part === undefined) ? undefined : (parts as number[]).reduce((sum, part) => sum + part, 0);
}

export async function measureHttpPath(ctx: BenchRun, stage: LedgerStage): Promise<HttpPathResult> {
  await waitForLedgerIdle(ctx, stage);
  const started = await startIngest(ctx, stage.env.USAGE_EVENTS_TOPIC);
  const seconds = knobs.seconds;
  log(`HTTP path: POST /v1/usage-events (100 per request, 10 connections, ${seconds} s) into the ledger's topic, until the balances reflect every event`);
  const processes = () => ({
    ledger: cpuSeconds(stage.ledger.child.pid), projector: cpuSeconds(stage.projector.child.pid),
    postgres: cpuSecondsOfProcesses('postgres'), kafka: cpuSecondsOfProcesses('java'),
  });
  const backends = [await readBackendCpu(ctx.pool)];
  const before = { ...processes(), ingest: cpuSeconds(started.ingest.child.pid), bench: ownCpuSeconds() };
  const t0 = performance.now();
  const { result, accepted } = await postUsageBatches(ctx, started, stage.accounts, 'path', 100, seconds);
  const loadEnded = performance.now();
  const ingestAfter = cpuSeconds(started.ingest.child.pid);
  backends.push(await readBackendCpu(ctx.pool)); // usage-ingest's backends end with it
  await started.ingest.kill();
  const drainSeconds = await waitForLedgerIdle(ctx, stage);
  const totalSeconds = (performance.now() - t0) / 1000;
  const after = processes();
  backends.push(await readBackendCpu(ctx.pool));
  const perUsage = (from: number | undefined, to: number | undefined) => cpuMicrosEach(accepted, from, to);
  const cpuMicros = {
    ingest: perUsage(before.ingest, ingestAfter), ledger: perUsage(before.ledger, after.ledger), projector: perUsage(before.projector, after.projector),
    postgres: perUsage(before.postgres, after.postgres), kafka: perUsage(before.kafka, after.kafka), bench: perUsage(before.bench, ownCpuSeconds()),
  };
  const outcome: HttpPathResult = {
    events: accepted,
    acceptedPerSec: accepted / ((loadEnded - t0) / 1000),
    eventsPerSec: accepted / totalSeconds,
    drainSeconds,
    httpP99: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
    cpuMicros,
    postgresByClient: clientMicros(cpuByClient(backends), accepted, before.postgres, after.postgres),
  };
  log(`  → ${accepted} events: accepted at ${outcome.acceptedPerSec.toFixed(0)}/s, in the balances at ${outcome.eventsPerSec.toFixed(0)}/s end to end (drained ${drainSeconds.toFixed(1)} s after the load)`);
  log(
    `    CPU per usage until then: ${micros(httpPathCpuTotal(cpuMicros))} µs: usage-ingest ${micros(cpuMicros.ingest)}, ledger ${micros(cpuMicros.ledger)}, projector ${micros(cpuMicros.projector)}, ` +
      `PostgreSQL ${micros(cpuMicros.postgres)}, Kafka ${micros(cpuMicros.kafka)}, the bench's load generator ${micros(cpuMicros.bench)}`,
  );
  log(`    PostgreSQL's CPU by client, µs per usage: ${clientsText(outcome.postgresByClient)}`);
  return outcome;
}

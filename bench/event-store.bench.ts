/**
 * The event store on its own, at the size issue 17 names: readAll (what the relay tails, and a rebuild reads) over a
 * store of 1,000,000 events, in pages of the relay's size. The events are written by PostgreSQL itself
 * (INSERT … SELECT generate_series, 1,000 per transaction, as the ledger's batches commit), so the setup is fast
 * and the figure is the read alone.
 */
import { START, PostgresEventStore, ensureSchema, type Checkpoint } from '@tally/event-store';
import { cpuMicrosEach, cpuSecondsOfProcesses, knobs, log, ownCpuSeconds, performance, type BenchRun } from './bench.harness';

export interface ReadAllResult {
  storeEvents: number;
  pageSize: number;
  eventsPerSec: number;
  /** The slowest page, ms: a text-sorted or unindexed read shows here first. */
  slowestPageMs: number;
  setupSeconds: number;
  /**
   * CPU per event read, µs: PostgreSQL's (every backend: the read is the only work of the cluster then) and this
   * process's (pg's rows parsed into events): what reading back an event costs, as the relay does for each one.
   */
  cpuMicros: { postgres?: number; node?: number };
}

const PAYLOAD = JSON.stringify({
  usageId: 'u', amount: '0.000195', perBucket: [{ bucketId: 'promotional:bench-grant', kind: 'promotional', amount: '0.000195' }],
  pricing: { rateCardVersion: '2025-11-01', lines: [{ model: 'gpt-4o-mini', feature: 'chat', inputTokens: 500, outputTokens: 200, amount: '0.000195' }] },
  feature: 'chat', models: ['gpt-4o-mini'], occurredAt: '2026-12-01T00:00:00.000Z', debitedAt: '2026-12-01T00:00:00.000Z', metadata: {},
});

export async function measureReadAll(ctx: BenchRun): Promise<ReadAllResult> {
  const storeEvents = knobs.storeEvents;
  const pageSize = 2_000; // RELAY_BATCH's default
  const schema = await ctx.createSchema('store');
  await ensureSchema(ctx.pool, schema);
  log(`event store: writing ${storeEvents} events into ${schema} (1,000 per transaction, 1,000 streams)`);
  const t0 = performance.now();
  for (let written = 0; written < storeEvents; written += 1_000) {
    // Stream account-<n % 1000>, version = its position in that stream: 1,000 per statement, one per stream.
    await ctx.pool.query(
      `INSERT INTO "${schema}".events (stream_id, version, event_id, type, data, metadata)
       SELECT 'account-bench-' || (g % 1000), $1::int + 1, gen_random_uuid(), 'UsageDebited', $2::jsonb, '{"schemaVersion": 2}'::jsonb
         FROM generate_series(0, 999) AS g`,
      [written / 1_000, PAYLOAD],
    );
  }
  const setupSeconds = (performance.now() - t0) / 1000;
  const store = new PostgresEventStore({ pool: ctx.pool, schema, listen: false });
  log(`  → written in ${setupSeconds.toFixed(1)} s; reading them all with readAll, ${pageSize} per page`);
  let after: Checkpoint = START;
  let read = 0;
  let slowestPageMs = 0;
  const r0 = performance.now();
  const cpuBefore = { postgres: cpuSecondsOfProcesses('postgres'), node: ownCpuSeconds() };
  for (;;) {
    const p0 = performance.now();
    const page = await store.readAll({ after, limit: pageSize });
    slowestPageMs = Math.max(slowestPageMs, performance.now() - p0);
    if (page.length === 0) break;
    read += page.length;
    after = page[page.length - 1].checkpoint;
  }
  const eventsPerSec = read / ((performance.now() - r0) / 1000);
  const cpuMicros = { postgres: cpuMicrosEach(read, cpuBefore.postgres, cpuSecondsOfProcesses('postgres')), node: cpuMicrosEach(read, cpuBefore.node, ownCpuSeconds()) };
  if (read !== storeEvents) throw new Error(`readAll returned ${read} events of ${storeEvents}`);
  log(`  → ${eventsPerSec.toFixed(0)} events/s; slowest page ${slowestPageMs.toFixed(0)} ms; CPU per event: PostgreSQL ${cpuMicros.postgres?.toFixed(1) ?? '?'} µs, Node ${cpuMicros.node?.toFixed(1) ?? '?'} µs`);
  return { storeEvents, pageSize, eventsPerSec, slowestPageMs, setupSeconds, cpuMicros };
}

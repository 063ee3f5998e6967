/**
 * The projection's statement on its own: what writing the read models costs PostgreSQL and the projector per usage
 * event, in-process and without Kafka, so a change to the read-model tables (an index, a table, a column) shows in
 * CPU microseconds that end-to-end runs on this shared 2-core machine cannot resolve. UsageDebited envelopes (the
 * parse is done before the clock starts) over 1,000 accounts go through LedgerProjection.apply in batches of 500
 * (BENCH_PROJECTION_BATCH), each in its own transaction as the projection consumer commits them; PostgreSQL's CPU
 * is its backend's, from /proc.
 */
import { Topics, parseMessage } from '@tally/contracts';
import { LedgerProjection, asLedgerEnvelope, createReadModelTables, type LedgerEnvelope } from '@tally/ledger-read-models';
import { Pool } from 'pg';
import { cpuMicrosEach, cpuSeconds, knobs, log, ownCpuSeconds, performance, type BenchRun } from './bench.harness';

export interface ProjectionResult {
  events: number;
  accounts: number;
  batchSize: number;
  eventsPerSec: number;
  /** CPU per usage event, µs: the PostgreSQL backend that ran the statements, and this (projecting) process. */
  postgresMicros: number;
  nodeMicros: number;
}

const EVENTS = 60_000;
const ACCOUNTS = 1_000;
const BATCH = knobs.projectionBatch;
const START = Date.parse('2026-11-01T00:00:00.000Z');

function usageDebited(n: number): LedgerEnvelope {
  const accountId = `acct-projection-${n % ACCOUNTS}`;
  const at = new Date(START + n * 1_000).toISOString();
  const amount = '0.000195';
  const raw = JSON.stringify({
    id: `e-${n}`, type: 'UsageDebited', version: 2, accountId, occurredAt: at, streamVersion: 1 + Math.floor(n / ACCOUNTS), actor: 'bench',
    balanceAfter: {
      available: '90', allowance: '90', promotional: '0', purchased: '0', held: '0', overdraft: '0', allocation: '100', usedThisCycle: '10',
      cycleId: 'c-1', cycleEnd: '2026-12-01T00:00:00.000Z', planId: 'pro', unlimited: false,
    },
    data: {
      usageId: `u-${n}`, amount, perBucket: [{ bucketId: 'allowance:c-1', kind: 'allowance', amount }], overdraft: '0', feature: 'chat', models: ['gpt-4o-mini'],
      occurredAt: at, debitedAt: at, metadata: {},
      pricing: { rateCardVersion: '2026-11-01', lines: [{ model: 'gpt-4o-mini', feature: 'chat', amount, inputTokens: 500, outputTokens: 200 }] },
    },
  });
  return asLedgerEnvelope(parseMessage(Topics.ledgerEvents, raw).envelope);
}

export async function measureProjection(ctx: BenchRun): Promise<ProjectionResult> {
  const schema = await ctx.createSchema('projection');
  await createReadModelTables(ctx.pool, schema);
  const batches: LedgerEnvelope[][] = [];
  for (let n = 0; n < EVENTS; n += BATCH) batches.push(Array.from({ length: Math.min(BATCH, EVENTS - n) }, (_, i) => usageDebited(n + i)));
  log(`projection: ${EVENTS} usage events over ${ACCOUNTS} accounts through LedgerProjection.apply, ${BATCH} per transaction`);
  const pool = new Pool({ connectionString: ctx.databaseUrl, max: 1 });
  try {
    const projection = new LedgerProjection(schema);
    const client = await pool.connect();
    try {
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const backend = rows[0].pid;
      const pg0 = cpuSeconds(backend);
      const node0 = ownCpuSeconds();
      const t0 = performance.now();
      for (const batch of batches) {
        await client.query('BEGIN');
        await projection.apply(client, batch);
        await client.query('COMMIT');
      }
      const seconds = (performance.now() - t0) / 1000;
      const postgresMicros = cpuMicrosEach(EVENTS, pg0, cpuSeconds(backend)) ?? Number.NaN;
      const nodeMicros = cpuMicrosEach(EVENTS, node0, ownCpuSeconds()) ?? Number.NaN;
      const eventsPerSec = EVENTS / seconds;
      log(`  → ${eventsPerSec.toFixed(0)} events/s; CPU per event: PostgreSQL ${postgresMicros.toFixed(1)} µs, Node ${nodeMicros.toFixed(1)} µs`);
      return { events: EVENTS, accounts: ACCOUNTS, batchSize: BATCH, eventsPerSec, postgresMicros, nodeMicros };
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
  }
}

/**
 * Raw limits of this machine, measured in the same run as the service figures so ratios survive noise:
 * (a) Kafka's own ProducerPerformance (acks=all, 300-byte records) — the bus's ceiling for any producer;
 * (b) batched INSERTs of 1,000 rows per transaction into a table identical to the event store's `events`
 *     (made by ensureSchema in a scratch schema) — the database's ceiling for appends, without decide/offsets;
 * (c) one small transaction after another (a one-row INSERT and its COMMIT in one round trip, as the consumers
 *     commit) — the floor of every stage an event crosses on its way to the balance (the ledger's transaction, the
 *     projector's), set by the disk's flush at COMMIT (synchronous_commit stays on: a ledger's commit is durable);
 * (d) how long the machine keeps a running process off its core while no load runs (the broker and PostgreSQL up
 *     and idle, whatever else shares the machine as it is) — a floor under every latency target: a request waiting
 *     for a descheduled process waits that long whatever the code does.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { ensureSchema } from '@tally/event-store';
import { knobs, log, performance, run, type BenchRun } from './bench.harness';
import { summarize } from './percentiles.harness';

export interface RawLimits {
  kafkaRecordsPerSec: number;
  kafkaMbPerSec: number;
  kafkaAvgLatencyMs: number;
  pgRowsPerSec: number;
  /** (c): a small transaction's COMMIT, in ms. */
  pgCommitMs?: { p50: number; p99: number };
  /** (d): the gaps a lone spinning process saw between consecutive clock reads. */
  scheduling?: SchedulingGaps;
}

export interface SchedulingGaps {
  seconds: number;
  over1ms: number;
  over5ms: number;
  longestMs: number;
}

const ROOT = resolve(__dirname, '..');

export async function kafkaProducerPerformance(ctx: BenchRun): Promise<Pick<RawLimits, 'kafkaRecordsPerSec' | 'kafkaMbPerSec' | 'kafkaAvgLatencyMs'>> {
  const topic = ctx.topic('raw.producer-perf');
  await ctx.createTopics([topic]);
  log(`Kafka ProducerPerformance: ${knobs.kafkaPerfRecords} × 300 B, acks=all, ${knobs.partitions} partitions`);
  const { stdout } = await run('java', [
    '-Xmx512m',
    `-Dlog4j2.configurationFile=${ROOT}/infra/kafka/log4j2.properties`,
    '-cp', `${ROOT}/.cache/kafka/lib/*`,
    'org.apache.kafka.tools.ProducerPerformance',
    '--topic', topic,
    '--num-records', String(knobs.kafkaPerfRecords),
    '--record-size', '300',
    '--throughput', '-1',
    '--producer-props', `bootstrap.servers=${ctx.brokers.join(',')}`, 'acks=all',
  ]);
  // The last line is the total: "200000 records sent, 151515.2 records/sec (43.35 MB/sec), 180.3 ms avg latency, …"
  const total = stdout.trim().split('\n').reverse().find((line) => / records sent, /.test(line));
  const match = total?.match(/records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency/);
  if (!match) throw new Error(`could not parse ProducerPerformance output:\n${stdout.slice(-1000)}`);
  const result = { kafkaRecordsPerSec: Number(match[1]), kafkaMbPerSec: Number(match[2]), kafkaAvgLatencyMs: Number(match[3]) };
  log(`  → ${result.kafkaRecordsPerSec.toFixed(0)} records/s (${result.kafkaMbPerSec} MB/s, ${result.kafkaAvgLatencyMs} ms avg latency)`);
  return result;
}

/**
 * Inserts rows shaped like real UsageDebited events (same columns, a jsonb payload of realistic size) with the
 * event store's own statement shape (one multi-row INSERT … SELECT FROM jsonb_array_elements per append).
 */
export async function postgresInsertRate(ctx: BenchRun): Promise<number> {
  const schema = await ctx.createSchema('raw');
  await ensureSchema(ctx.pool, schema);
  const seconds = knobs.seconds;
  log(`PostgreSQL batched INSERT into ${schema}.events: 1,000 rows per transaction for ${seconds} s`);
  const client = await ctx.pool.connect();
  let rows = 0;
  let streamNo = 0;
  try {
    const deadline = performance.now() + seconds * 1000;
    const t0 = performance.now();
    while (performance.now() < deadline) {
      // 1,000 rows over 100 streams × 10 versions, like one consumer batch spread over many accounts.
      const batch = Array.from({ length: 1000 }, (_, i) => ({
        stream: `account-raw-${streamNo + Math.floor(i / 10)}`,
        version: (i % 10) + 1,
        id: randomUUID(),
        type: 'UsageDebited',
        data: debitPayload(`raw-${streamNo}-${i}`),
      }));
      streamNo += 100;
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO "${schema}".events (stream_id, version, event_id, type, data, metadata)
         SELECT e.ev->>'stream', (e.ev->>'version')::int, (e.ev->>'id')::uuid, e.ev->>'type', e.ev->'data', '{}'::jsonb
           FROM jsonb_array_elements($1::jsonb) AS e(ev)`,
        [JSON.stringify(batch)],
      );
      await client.query('COMMIT');
      rows += batch.length;
    }
    const rate = rows / ((performance.now() - t0) / 1000);
    log(`  → ${rate.toFixed(0)} rows/s (${rows} rows)`);
    return rate;
  } finally {
    client.release();
  }
}

/** (c): small transactions one after another for 3 s on an otherwise idle database; each one's round trip. */
export async function postgresCommitLatency(ctx: BenchRun): Promise<{ p50: number; p99: number }> {
  const schema = await ctx.createSchema('commit');
  await ctx.pool.query(`CREATE TABLE "${schema}".commits (n bigint NOT NULL)`);
  log('PostgreSQL small transactions (one-row INSERT and COMMIT, one round trip each) for 3 s');
  const client = await ctx.pool.connect();
  const took: number[] = [];
  try {
    const deadline = performance.now() + 3_000;
    for (let n = 0; performance.now() < deadline; n += 1) {
      const t0 = performance.now();
      await client.query(`BEGIN; INSERT INTO "${schema}".commits (n) VALUES (${n}); COMMIT`);
      took.push(performance.now() - t0);
    }
  } finally {
    client.release();
  }
  const { n, p50, p99 } = summarize(took);
  log(`  → ${n} transactions; p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`);
  return { p50, p99 };
}

/**
 * A process that spins alone reads the clock back to back; any gap between two reads longer than a millisecond is
 * time the machine (the kernel's other work, other processes, the hypervisor's other guests) kept it off its core.
 * With a second core idle there should be none; a request that meets such a gap in the process serving it waits it out.
 * In a child process so that the bench's own timers (Kafka's heartbeats) keep running.
 */
const SPINNER = `
  const { performance } = require('node:perf_hooks');
  const end = performance.now() + Number(process.argv[1]) * 1000;
  const gaps = [];
  for (let last = performance.now(), now = last; now < end; last = now) {
    now = performance.now();
    if (now - last > 1) gaps.push(now - last);
  }
  console.log(JSON.stringify(gaps));
`;

/** (d): one process spinning for `seconds` on an otherwise idle machine; its gaps off the core. */
export async function schedulingGaps(seconds = 10): Promise<SchedulingGaps> {
  log(`the machine's scheduling: one process spinning alone for ${seconds} s, gaps between its clock reads`);
  const { stdout } = await run(process.execPath, ['-e', SPINNER, String(seconds)]);
  const gaps = JSON.parse(stdout) as number[];
  const result = { seconds, over1ms: gaps.length, over5ms: gaps.filter((gap) => gap > 5).length, longestMs: Math.max(0, ...gaps) };
  log(`  → ${result.over1ms} gaps over 1 ms, ${result.over5ms} over 5 ms, the longest ${result.longestMs.toFixed(1)} ms`);
  return result;
}

/** A UsageDebited payload of the size the ledger writes (one bucket, one pricing line). */
function debitPayload(usageId: string): object {
  return {
    usageId,
    amount: '0.000195',
    perBucket: [{ bucketId: 'promotional:bench-grant', kind: 'promotional', amount: '0.000195' }],
    pricing: { rateCardVersion: '2025-11-01', lines: [{ model: 'gpt-4o-mini', feature: 'chat', inputTokens: 500, outputTokens: 200, amount: '0.000195' }] },
    feature: 'chat',
    models: ['gpt-4o-mini'],
    occurredAt: new Date().toISOString(),
  };
}

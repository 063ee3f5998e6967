/**
 * Raw limits of this machine, measured in the same run as the service figures so ratios survive noise:
 * (a) Kafka's own ProducerPerformance (acks=all, 300-byte records) — the bus's ceiling for any producer;
 * (b) batched INSERTs of 1,000 rows per transaction into a table identical to the event store's `events`
 *     (made by ensureSchema in a scratch schema) — the database's ceiling for appends, without decide/offsets.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { ensureSchema } from '@tally/event-store';
import { knobs, log, performance, run, type BenchRun } from './bench.harness';

export interface RawLimits {
  kafkaRecordsPerSec: number;
  kafkaMbPerSec: number;
  kafkaAvgLatencyMs: number;
  pgRowsPerSec: number;
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

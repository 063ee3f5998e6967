/**
 * `npm run bench` (bench/run.sh) → this script: measures the raw limits and the service figures in one run,
 * prints a compact table and writes it as JSON to .cache/bench/last.json.
 *
 * Phases (BENCH_ONLY=raw,parse,…,ingest selects a subset):
 *   raw        Kafka ProducerPerformance, batched INSERTs into an events table, small transactions one after
 *              another (a commit's latency), and a process spinning alone (how long the machine keeps it off its core)
 *   parse      one message's parse (JSON → validated instances) in-process: Tally's compiled paths next to
 *              class-transformer + class-validator doing the same work; a keyed message's partition (murmur2); and
 *              one record's share of encoding a relay-sized Produce request (kafkajs, as patched)
 *   store      readAll over a store of BENCH_STORE_EVENTS (1,000,000) events, in the relay's page size
 *   append     single-event appends, 1 and 8 callers: Tally's event store next to Emmett's (bench/peers)
 *   projection the read models' statement alone: 60,000 usage events through LedgerProjection.apply in batches of 500,
 *              events/s and the CPU per event of PostgreSQL's backend and of the projecting process
 *   throughput N pre-produced usage events through a freshly started ledger (Kafka-direct path), until every balance
 *              is projected; the CPU of the ledger, the projector, PostgreSQL and Kafka over that time
 *   latency    producer ack → balance read model, at a steady rate
 *   curve      the same, open loop, at 10%, 25%, 50%, 75% and 100% of the measured throughput (shorter runs)
 *   authz      POST /v1/accounts/:id/authorizations paced at 1,000 req/s, next to a 401 at the same pace (the ledger's
 *              and a bare node:http server's in its own process: the machine's floor)
 *              and GET /health and a 401 at max rate
 *   httppath   usage-ingest POST /v1/usage-events at max rate into the ledger's topic → balances (the whole HTTP path),
 *              then event → balance latency through it at half that rate
 *   scale      one usage event for each of BENCH_SCALE_ACCOUNTS (100,000 and 1,000,000) new accounts: throughput and RSS;
 *              then one for up to BENCH_EVENTS of those accounts on a restarted ledger (cold loads): throughput;
 *              then event → balance latency with the load spread over those accounts, at the latency phase's rate, evenly
 *              and Zipf-skewed (the account cache's hit ratio for each), and evenly at half the population's own rate when
 *              that is lower (the latency phase's rate overloads it)
 *   coldload   the first authorization on an account with BENCH_STREAM_EVENTS (100,000) events after a restart
 *   ingest     usage-ingest POST /v1/usage-events (batches of 100) at max rate, next to GET /health
 */
// The @tally libs use class-validator/class-transformer decorators, which need the metadata polyfill first.
import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { measureBalanceLatency, chooseLatencyRates, gcText, p99Bound, type ConsumerCycle, type LatencyResult, type StageLatency } from './balance-latency.bench';
import { measureAccountLoad, type AccountLoadResult } from './account-load.bench';
import { measureParsing, measurePartitioning, type ParsingResult, type PartitioningResult } from './contract-parsing.bench';
import { measureReadAll, type ReadAllResult } from './event-store.bench';
import { measureRecordEncoding, type EncodingResult } from './kafka-encoding.bench';
import { measureProjection, type ProjectionResult } from './projection.bench';
import { measureSingleAppends, type AppendFigure } from './peer-store.bench';
import { BenchRun, gitRevision, knobs, loadAverage, log, performance, phaseEnabled } from './bench.harness';
import { httpPathCpuTotal, measureHttpPath, type HttpPathResult } from './http-path.bench';
import { loopText, measureAuthorizations, measureIngest, type AuthorizationResult, type IngestResult } from './http.bench';
import { accountId, measureThroughput, setUpLedger, waitForLedgerIdle, type LedgerStage, type ThroughputResult } from './ledger-throughput.bench';
import { kafkaProducerPerformance, postgresCommitLatency, postgresInsertRate, schedulingGaps, type RawLimits, type SchedulingGaps } from './raw-limits.bench';
import { LEDGER_CACHE_SIZE, simulatedLruHitRatio } from './skewed-load.harness';
import { clientsText } from './postgres-clients.harness';

const ROOT = resolve(__dirname, '..');

interface Results {
  raw: Partial<RawLimits>;
  parsing: ParsingResult[];
  partitioning?: PartitioningResult;
  encoding?: EncodingResult;
  readAll?: ReadAllResult;
  appends: AppendFigure[];
  projection?: ProjectionResult;
  throughput?: ThroughputResult;
  latency: LatencyResult[];
  curve: LatencyResult[];
  authz?: AuthorizationResult;
  httpPath?: HttpPathResult;
  httpLatency?: LatencyResult;
  accountLoad?: AccountLoadResult;
  scale: ThroughputResult[];
  /** Per population: one usage each for accounts the scale run opened, on a restarted ledger (cold cache). */
  scaleCold: ThroughputResult[];
  scaleLatency: LatencyResult[];
  ingest?: IngestResult;
}

interface Row {
  figure: string;
  value: string;
  rawLimit: string;
  target: string;
  met: 'yes' | 'no' | '—';
}

const num = (n: number | undefined, digits = 0) => (n === undefined || Number.isNaN(n) ? 'n/a' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const ms = (n: number) => `${num(n, n < 10 ? 1 : 0)} ms`;
const schedulingText = (s: SchedulingGaps) => `${s.over1ms} times > 1 ms, ${s.over5ms} > 5 ms, longest ${ms(s.longestMs)}`;
const pct = (part: number, whole: number | undefined) => (whole ? ` (${num((100 * part) / whole)}% of it)` : '');

function table(r: Results): Row[] {
  const rows: Row[] = [];
  const { raw } = r;
  if (raw.kafkaRecordsPerSec !== undefined) {
    rows.push({ figure: 'raw: Kafka ProducerPerformance (300 B, acks=all)', value: `${num(raw.kafkaRecordsPerSec)} records/s`, rawLimit: '—', target: '—', met: '—' });
  }
  if (raw.pgRowsPerSec !== undefined) {
    rows.push({ figure: 'raw: PostgreSQL INSERT, 1,000-row txns into events', value: `${num(raw.pgRowsPerSec)} rows/s`, rawLimit: '—', target: '—', met: '—' });
  }
  if (raw.scheduling) {
    rows.push({ figure: `raw: the machine's scheduling, a process spinning alone for ${raw.scheduling.seconds} s`, value: `off its core: ${schedulingText(raw.scheduling)}`, rawLimit: '—', target: '—', met: '—' });
  }
  for (const p of r.parsing) {
    rows.push({
      figure: `parse one ${p.message}`,
      value: `${num(p.compiledMicros, 1)} µs (${num(1e6 / p.compiledMicros)}/s per core)`,
      rawLimit: `class-transformer + class-validator ${num(p.classValidatorMicros, 1)} µs (${num(p.classValidatorMicros / p.compiledMicros, 1)}×)`,
      target: '—',
      met: '—',
    });
  }
  if (r.partitioning) {
    const p = r.partitioning;
    rows.push({
      figure: 'partition one keyed message (murmur2; the relay does it twice per event)',
      value: `${num(p.tallyMicros, 2)} µs`,
      rawLimit: `kafkajs's DefaultPartitioner ${num(p.kafkajsMicros, 2)} µs (${num(p.kafkajsMicros / p.tallyMicros, 1)}×)`,
      target: '—',
      met: '—',
    });
  }
  if (r.encoding) {
    rows.push({
      figure: `encode one record of a relay send (kafkajs Produce v3, ${num(r.encoding.records)} records of 880 B in 6 partitions)`,
      value: `${num(r.encoding.microsPerRecord, 1)} µs`,
      rawLimit: 'unpatched kafkajs 18.6–28.7 µs in this phase, session 16 (not in the same run: the patch is applied in place)',
      target: '—',
      met: '—',
    });
  }
  if (r.readAll) {
    const a = r.readAll;
    rows.push({
      figure: `readAll on a store of ${num(a.storeEvents)} events (pages of ${num(a.pageSize)})`,
      value: `${num(a.eventsPerSec)} events/s; slowest page ${ms(a.slowestPageMs)}; CPU per event: PostgreSQL ${num(a.cpuMicros.postgres, 1)} µs, Node ${num(a.cpuMicros.node, 1)} µs`,
      rawLimit: raw.pgRowsPerSec ? `PG INSERT ${num(raw.pgRowsPerSec)} rows/s` : '—',
      target: '≥ 50,000 events/s on ≥ 1 M events',
      met: a.eventsPerSec >= 50_000 && a.storeEvents >= 1_000_000 ? 'yes' : 'no',
    });
  }
  for (const a of r.appends) {
    rows.push({
      figure: `single-event append, ${a.callers} caller${a.callers > 1 ? 's' : ''} (HTTP commands' path)`,
      value: `${num(a.tallyPerSec)} appends/s (${num(a.tallyPerSec / a.emmettPerSec, 2)}× Emmett)`,
      rawLimit: `Emmett appendToStream ${num(a.emmettPerSec)}/s`,
      target: '≥ 1.5 × Emmett',
      met: a.tallyPerSec >= 1.5 * a.emmettPerSec ? 'yes' : 'no',
    });
  }
  if (r.projection) {
    const p = r.projection;
    rows.push({
      figure: `projection statement alone: ${num(p.events)} usage events, ${num(p.accounts)} accounts, ${num(p.batchSize)} per transaction`,
      value: `${num(p.eventsPerSec)} events/s; CPU per event: PostgreSQL ${num(p.postgresMicros, 1)} µs, Node ${num(p.nodeMicros, 1)} µs`,
      rawLimit: raw.pgRowsPerSec ? `PG INSERT ${num(raw.pgRowsPerSec)} rows/s` : '—',
      target: '—',
      met: '—',
    });
  }
  if (r.throughput) {
    const t = r.throughput;
    const limits = [raw.kafkaRecordsPerSec && `Kafka ${num(raw.kafkaRecordsPerSec)}/s`, raw.pgRowsPerSec && `PG ${num(raw.pgRowsPerSec)} rows/s`].filter(Boolean).join(', ') || '—';
    rows.push({
      figure: `ledger throughput, Kafka-direct (${num(t.events)} events): decided, appended, published, projected`,
      value: `${num(t.endToEndPerSec)} events/s end to end${pct(t.endToEndPerSec, raw.pgRowsPerSec).replace('of it', 'of PG')}`,
      rawLimit: limits,
      // Issue 17's targets: 20,000/s is the goal; met at ≥ 12,000/s and ≥ half the batched-INSERT rate of the same run.
      target: `≥ 12,000/s and ≥ 0.5 × PG INSERT${raw.pgRowsPerSec ? ` (${num(raw.pgRowsPerSec / 2)}/s)` : ''}; goal 20,000/s`,
      met: t.endToEndPerSec >= 12_000 && (raw.pgRowsPerSec === undefined || t.endToEndPerSec >= raw.pgRowsPerSec / 2) ? 'yes' : 'no',
    });
    rows.push({
      figure: 'of which the usage consumer alone (decide, append, offsets)',
      value: `${num(t.eventsPerSec)} events/s; ${num(t.eventsPerSecFromReady)} events/s incl. cold start after /health`,
      rawLimit: `CPU while applying: ledger ${num(t.ledgerCpuPercent)}%, projector ${num(t.projectorCpuPercent)}% of 1 core`,
      target: '—',
      met: '—',
    });
    const split = t.cpuSplit;
    rows.push({
      figure: 'balances reflect all events (after first batch)',
      value: `${num(t.projectionSeconds, 1)} s (lag ${num(t.projectionLagSeconds, 1)} s)`,
      rawLimit: `CPU until then: ledger ${num(split.ledger)}%, projector ${num(split.projector)}%, PostgreSQL ${num(split.postgres)}%, Kafka ${num(split.kafka)}% of 1 core (of ${cpus().length})`,
      target: '—',
      met: '—',
    });
    rows.push({
      figure: "the machine's CPU per usage (ledger, projector, PostgreSQL, Kafka)",
      value: cpuCost(t),
      rawLimit: t.cpuMicros ? `${num(cpus().length)} cores carry at most ${num((cpus().length * 1e6) / t.cpuMicros.perUsage)} usages/s at this cost` : '—',
      target: '—',
      met: '—',
    });
    rows.push({ figure: "  of which PostgreSQL's, by client (its sessions' application_name)", value: `${clientsText(t.postgresByClient)} µs a usage`, rawLimit: '—', target: '—', met: '—' });
    // Where PostgreSQL's share went, statement by statement (bench/postgres-statements.harness.ts says how to turn it on).
    if (!t.postgresStatements) {
      rows.push({ figure: "PostgreSQL's time by statement, µs per usage", value: 'not measured (pg_stat_statements not preloaded)', rawLimit: '—', target: '—', met: '—' });
    }
    for (const statement of t.postgresStatements ?? []) {
      rows.push({
        figure: `  PostgreSQL: ${statement.statement}`,
        value: `${num(statement.microsPerEvent, 1)} µs per usage (${num(statement.calls)} calls)`,
        rawLimit: '—',
        target: '—',
        met: '—',
      });
    }
  }
  for (const l of r.latency) {
    rows.push({
      figure: `event→balance latency at ${num(l.rate)}/s (${l.rateReason})`,
      value: latencyValue(l),
      rawLimit: `a PostgreSQL commit (idle) p50 / p99 ${raw.pgCommitMs ? `${ms(raw.pgCommitMs.p50)} / ${ms(raw.pgCommitMs.p99)}` : 'n/a'}; Kafka avg ack ${raw.kafkaAvgLatencyMs !== undefined ? ms(raw.kafkaAvgLatencyMs) : 'n/a'} (perf, saturated)`,
      target: 'p99 ≤ 250 ms',
      met: l.p99 <= 250 && l.missed === 0 ? 'yes' : 'no',
    });
    if (l.stages) {
      const stage = ({ p50, p99 }: StageLatency) => `${ms(p50)} / ${ms(p99)}`;
      rows.push({
        figure: '  of which p50 / p99: ack → ledger tx; → relayed; → balance',
        value: `${stage(l.stages.toLedger)}; ${stage(l.stages.toRelay)}; ${stage(l.stages.toBalance)}`,
        rawLimit: `GC pauses: ledger ${gcText(l.pauses?.ledger)}, projector ${gcText(l.pauses?.projector)}`,
        target: '—',
        met: '—',
      });
    }
    if (l.consumers) {
      const cycle = (c: ConsumerCycle | undefined) =>
        c ? `${ms(c.wait.meanMs)} (${p99Bound(c.wait, ms)}) / ${ms(c.transaction.meanMs)} (${p99Bound(c.transaction, ms)})` : 'unknown';
      rows.push({
        figure: '  of which consumers, mean (p99 bucket): waited; in transaction',
        value: `ledger ${cycle(l.consumers.ledger)}; projector ${cycle(l.consumers.projector)}`,
        rawLimit: '—',
        target: '—',
        met: '—',
      });
    }
  }
  if (r.authz) {
    const a = r.authz;
    rows.push({
      figure: `authorization paced at ${num(a.targetRate)} req/s (${a.accounts} accounts)`,
      value: `${num(a.achievedRate)} req/s; p50 ${ms(a.p50)} p95 ${ms(a.p95)} p99 ${ms(a.p99)} max ${ms(a.max)}; errors ${a.errors}; CPU per request: ledger ${num(a.cpuPerRequest.ledgerMicros)} µs, PostgreSQL ${num(a.cpuPerRequest.postgresMicros)} µs`,
      rawLimit: `at the same pace, p99: the ledger's 401 ${ms(a.floorAtRate.p99)}, a bare node:http 401 ${ms(a.bareAtRate.p99)}; a lone spinning process off its core ${raw.scheduling ? schedulingText(raw.scheduling) : 'n/a'}; max rate: 401 ${num(a.raw.floor.requestsPerSec)} req/s, /health ${num(a.raw.health.requestsPerSec)} req/s; ledger GC ${gcText(a.gc)}, event loop delay ${loopText(a.loopDelay)}`,
      target: 'p99 ≤ 5 ms',
      met: a.p99 <= 5 && a.errors === 0 && a.achievedRate >= a.targetRate * 0.95 ? 'yes' : 'no',
    });
  }
  if (r.httpPath) {
    const h = r.httpPath;
    rows.push({
      figure: `HTTP path: POST /v1/usage-events batches → balance (${num(h.events)} events)`,
      value: `${num(h.eventsPerSec)} events/s end to end (accepted at ${num(h.acceptedPerSec)}/s, drained ${num(h.drainSeconds, 1)} s after; HTTP p99 ${ms(h.httpP99)}; errors ${h.errors})`,
      rawLimit: r.throughput ? `ledger Kafka-direct ${num(r.throughput.endToEndPerSec)}/s end to end` : '—',
      target: '≥ 12,000/s',
      met: h.eventsPerSec >= 12_000 && h.errors === 0 ? 'yes' : 'no',
    });
    const c = h.cpuMicros;
    const total = httpPathCpuTotal(c);
    rows.push({
      figure: "  of which the machine's CPU per usage, by process",
      value:
        `${num(total)} µs a usage: usage-ingest ${num(c.ingest)}, ledger ${num(c.ledger)}, projector ${num(c.projector)}, PostgreSQL ${num(c.postgres)}, ` +
        `Kafka ${num(c.kafka)}, the bench ${num(c.bench)}`,
      rawLimit: total === undefined ? '—' : `${num(cpus().length)} cores carry at most ${num((cpus().length * 1e6) / total)} usages/s at this cost`,
      target: '—',
      met: '—',
    });
    rows.push({
      figure: "  of which PostgreSQL's, by client (its sessions' application_name)",
      value: `${clientsText(h.postgresByClient)} µs a usage`,
      rawLimit: r.throughput ? `Kafka-direct: ${clientsText(r.throughput.postgresByClient)} µs` : '—',
      target: '—',
      met: '—',
    });
  }
  if (r.accountLoad) {
    const l = r.accountLoad;
    rows.push({
      figure: `loading an account with ${num(l.streamEvents)} events (its first authorization after a restart)`,
      value: `${ms(l.coldMs)} (${l.snapshotVersion === undefined ? 'no snapshot: the whole stream folded' : `from the snapshot at ${num(l.snapshotVersion)} and ${num(l.streamEvents - l.snapshotVersion)} events after it`})`,
      rawLimit: `the same authorization, account cached: ${ms(l.warmMs)}; the restarted process's first (a 2-event account): ${ms(l.firstRequestMs)}`,
      target: '≤ 50 ms',
      met: l.coldMs <= 50 && l.streamEvents >= 100_000 ? 'yes' : 'no',
    });
  }
  if (r.httpLatency) {
    const l = r.httpLatency;
    rows.push({
      figure: `HTTP path: POST → balance latency at ${num(l.rate)}/s (${l.rateReason})`,
      value: latencyValue(l),
      rawLimit: r.latency[0] ? `Kafka-direct p99 ${ms(r.latency[0].p99)} at ${num(r.latency[0].rate)}/s` : '—',
      target: 'p99 ≤ 250 ms',
      met: l.p99 <= 250 && l.missed === 0 ? 'yes' : 'no',
    });
  }
  for (const t of r.scale) {
    const million = t.accounts >= 1_000_000;
    rows.push({
      figure: `ledger throughput with ${num(t.accounts)} accounts (one usage each: new accounts, cold cache, overdraft)`,
      value: `${num(t.endToEndPerSec)} events/s end to end (usage consumer ${num(t.eventsPerSec)}/s); ${cpuCost(t)}; ledger RSS ${num(t.ledgerRssMb)} MB (peak ${num(t.ledgerPeakRssMb)} MB)`,
      rawLimit: r.throughput ? `${num(r.throughput.accounts)} accounts with credits: ${num(r.throughput.endToEndPerSec)} events/s end to end, ${cpuCost(r.throughput)}` : '—',
      target: million ? 'a flat curve; RSS ≤ 512 MB with 1 M accounts touched' : 'a flat curve',
      met: million ? ((t.ledgerPeakRssMb ?? Infinity) <= 512 ? 'yes' : 'no') : '—',
    });
  }
  r.scaleCold.forEach((t, i) => {
    const population = r.scale[i]?.accounts;
    rows.push({
      figure: `ledger throughput over ${num(t.accounts)} of the ${num(population)} accounts above (one usage each, restarted ledger: every account a cold load)`,
      value: `${num(t.endToEndPerSec)} events/s end to end (usage consumer ${num(t.eventsPerSec)}/s); ${cpuCost(t)}`,
      rawLimit: r.throughput ? `${num(r.throughput.accounts)} accounts, cached after their first usage: ${cpuCost(r.throughput)}` : '—',
      target: 'a flat curve',
      met: '—',
    });
  });
  if (r.ingest) {
    const i = r.ingest;
    rows.push({
      figure: `HTTP ingest, batches of ${i.batchSize}`,
      value: `${num(i.requestsPerSec)} req/s = ${num(i.eventsPerSec)} events/s; p50 ${ms(i.p50)} p99 ${ms(i.p99)}; errors ${i.errors}; CPU per event: usage-ingest ${num(i.cpuPerEvent.ingestMicros)} µs, PostgreSQL ${num(i.cpuPerEvent.postgresMicros)} µs`,
      rawLimit: `Kafka ${num(raw.kafkaRecordsPerSec)} rec/s; 401 floor ${num(i.raw.floor.requestsPerSec)} req/s; /health ${num(i.raw.health.requestsPerSec)} req/s`,
      target: '—',
      met: '—',
    });
  }
  for (const l of r.scaleLatency) {
    rows.push({
      figure: `event→balance latency with ${num(l.accounts)} accounts${l.distribution === 'zipf' ? ', Zipf-skewed (s = 1)' : ''} at ${num(l.rate)}/s (${l.rateReason})`,
      value: `${latencyValue(l)}; account cache hits ${l.cacheHitRatio === undefined ? 'unknown' : `${(100 * l.cacheHitRatio).toFixed(1)}%`}${
        l.distribution === 'zipf' ? ` (once warm, simulated: ${(100 * simulatedLruHitRatio(l.accounts, LEDGER_CACHE_SIZE)).toFixed(1)}% with ${num(LEDGER_CACHE_SIZE)} cached)` : ''
      }`,
      rawLimit: r.latency[0] ? `${num(r.latency[0].accounts)} accounts: p99 ${ms(r.latency[0].p99)} at ${num(r.latency[0].rate)}/s` : '—',
      target: 'p99 ≤ 250 ms (a flat curve)',
      met: l.p99 <= 250 && l.missed === 0 ? 'yes' : 'no',
    });
  }
  const sustained = r.throughput?.endToEndPerSec;
  for (const l of r.curve) {
    rows.push({
      figure: `open-loop event→balance latency at ${num(sustained ? (100 * l.rate) / sustained : NaN)}% of the sustained rate (${num(l.rate)}/s)`,
      value: latencyValue(l),
      rawLimit: sustained ? `sustained ${num(sustained)} events/s` : '—',
      target: 'a curve',
      met: '—',
    });
  }
  // Figures this run did not measure (their phase was not selected): printed, so the table shows the whole gap.
  if (r.scaleLatency.length === 0) rows.push({ figure: 'event→balance p99 with 100 k and 1 M accounts', value: 'not measured (phase scale)', rawLimit: '—', target: 'a flat curve', met: 'no' });
  if (r.curve.length === 0) rows.push({ figure: 'open-loop event→balance latency, 10% … 100% of the sustained rate', value: 'not measured (phases throughput and curve)', rawLimit: '—', target: 'a curve', met: 'no' });
  return rows;
}

/** `count` of `items`, evenly spaced over the whole list (all of it when count ≥ its length). */
function spreadOver<T>(items: readonly T[], count: number): T[] {
  const step = items.length / count;
  return Array.from({ length: Math.min(count, items.length) }, (_, i) => items[Math.floor(i * step)]);
}

/** A throughput run's cost: the machine's CPU per usage and per stored event, and the events a usage stored. */
const cpuCost = (t: ThroughputResult): string =>
  t.cpuMicros
    ? `CPU ${num(t.cpuMicros.perUsage)} µs a usage, ${num(t.cpuMicros.perStoredEvent)} µs a stored event (${num(t.storedEventsPerUsage, 2)} stored a usage)`
    : `CPU per usage not measured (${num(t.storedEventsPerUsage, 2)} events stored a usage)`;

const latencyValue = (l: LatencyResult): string =>
  `p50 ${ms(l.p50)} p95 ${ms(l.p95)} p99 ${ms(l.p99)} max ${ms(l.max)} (achieved ${num(l.achievedRate)}/s; n=${l.samples}${l.missed ? `, missed ${l.missed}` : ''}; backlog at end ${num(l.backlogAtEnd)})`;

/** The open-loop curve's points, as fractions of the sustained (Kafka-direct) rate. */
const CURVE_POINTS = [0.1, 0.25, 0.5, 0.75, 1];

function printTable(rows: Row[]): void {
  const headers: Row = { figure: 'figure', value: 'value', rawLimit: 'raw limit (same run)', target: 'target', met: '—' };
  const keys = ['figure', 'value', 'rawLimit', 'target', 'met'] as const;
  const all = [{ ...headers, met: 'met?' as Row['met'] }, ...rows];
  const widths = keys.map((k) => Math.max(...all.map((row) => String(row[k]).length)));
  const line = (row: Row) => keys.map((k, i) => String(row[k]).padEnd(widths[i])).join(' | ');
  console.log('\n' + line(all[0]));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of rows) console.log(line(row));
  console.log('');
}

async function main(): Promise<void> {
  const ctx = new BenchRun();
  const t0 = performance.now();
  const loadAtStart = loadAverage();
  log(`run ${ctx.id}: events=${knobs.events} seconds=${knobs.seconds} accounts=${knobs.accounts} partitions=${knobs.partitions} runtime=${knobs.runtime}; load average ${loadAtStart}`);
  const results: Results = { raw: {}, parsing: [], appends: [], latency: [], curve: [], scale: [], scaleCold: [], scaleLatency: [] };
  let failure: unknown;
  const interrupted = () => {
    log('interrupted: cleaning up');
    void ctx.cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  try {
    if (phaseEnabled('raw')) {
      Object.assign(results.raw, await kafkaProducerPerformance(ctx));
      results.raw.pgRowsPerSec = await postgresInsertRate(ctx);
      results.raw.pgCommitMs = await postgresCommitLatency(ctx);
      results.raw.scheduling = await schedulingGaps();
    }
    if (phaseEnabled('parse')) {
      results.parsing = measureParsing();
      results.partitioning = measurePartitioning();
      results.encoding = await measureRecordEncoding();
    }
    if (phaseEnabled('store')) results.readAll = await measureReadAll(ctx);
    if (phaseEnabled('append')) results.appends = await measureSingleAppends(ctx);
    if (phaseEnabled('projection')) results.projection = await measureProjection(ctx);
    const needsLedger = ['throughput', 'latency', 'curve', 'authz', 'httppath', 'coldload', 'scale'].some(phaseEnabled);
    let stage: LedgerStage | undefined;
    if (needsLedger) stage = await setUpLedger(ctx);
    if (stage && phaseEnabled('throughput')) results.throughput = await measureThroughput(ctx, stage);
    if (stage && phaseEnabled('latency')) {
      for (const { rate, reason } of chooseLatencyRates(results.throughput?.endToEndPerSec)) {
        results.latency.push(await measureBalanceLatency(ctx, stage, rate, reason));
      }
    }
    if (stage && phaseEnabled('curve') && results.throughput) {
      for (const share of CURVE_POINTS) {
        const rate = Math.round(results.throughput.endToEndPerSec * share);
        results.curve.push(await measureBalanceLatency(ctx, stage, rate, `${share * 100}% of the measured rate`, { seconds: knobs.seconds, label: 'curve' }));
      }
    }
    if (stage && phaseEnabled('authz')) results.authz = await measureAuthorizations(stage);
    if (stage && phaseEnabled('httppath')) {
      results.httpPath = await measureHttpPath(ctx, stage);
      const half = Math.round(results.httpPath.eventsPerSec / 2);
      results.httpLatency = await measureBalanceLatency(ctx, stage, half, 'half the HTTP path rate', { path: 'http' });
    }
    if (stage && phaseEnabled('coldload')) results.accountLoad = await measureAccountLoad(ctx, stage);
    if (stage && phaseEnabled('scale')) {
      for (const population of knobs.scaleAccounts) {
        await waitForLedgerIdle(ctx, stage);
        const accounts = Array.from({ length: population }, (_, i) => `scale${population}-${ctx.id}-${i}`);
        const scaled = await measureThroughput(ctx, stage, { events: population, accounts, runId: `scale${population}-${ctx.id}` });
        results.scale.push(scaled);
        // What the latency runs below send: usage for accounts that exist, mostly not in the account cache. One usage
        // each for up to BENCH_EVENTS of them, spread over the population, on a restarted ledger: every one a cold load.
        const cold = spreadOver(accounts, Math.min(population, knobs.events));
        const coldScaled = await measureThroughput(ctx, stage, { events: cold.length, accounts: cold, runId: `scalecold${population}-${ctx.id}` });
        results.scaleCold.push(coldScaled);
        const [{ rate, reason }] = chooseLatencyRates(results.throughput?.endToEndPerSec);
        results.scaleLatency.push(await measureBalanceLatency(ctx, stage, rate, reason, { accounts, label: `scale${population}` }));
        // The same accounts and rate with a product's skew (a few accounts send most usage): what the account cache
        // (ACCOUNT_CACHE_SIZE) buys when the load is not spread evenly over more accounts than it holds.
        results.scaleLatency.push(await measureBalanceLatency(ctx, stage, rate, reason, { accounts, distribution: 'zipf', label: `zipf${population}` }));
        // The 1,000-account half rate is above what this many cold accounts sustain, so the two runs above end with a
        // backlog and their p99 is its age. Half this population's own rate for the same traffic (existing accounts,
        // cold: the run just above) gives its latency when it keeps up; not when BENCH_LATENCY_RATE fixes every run's rate.
        const own = Math.round(coldScaled.endToEndPerSec / 2);
        if (!knobs.latencyRate && own < rate) {
          results.scaleLatency.push(await measureBalanceLatency(ctx, stage, own, "half this population's cold-account rate", { accounts, label: `own${population}` }));
        }
      }
    }
    // The ledger is not needed any more; stopping it leaves both cores to usage-ingest.
    if (stage) await Promise.all([stage.ledger.kill(), stage.projector.kill()]);
    if (phaseEnabled('ingest')) results.ingest = await measureIngest(ctx, stage?.accounts ?? Array.from({ length: knobs.accounts }, (_, i) => accountId(i)));
  } catch (error) {
    failure = error;
    log(`FAILED: ${(error as Error).stack ?? String(error)}`);
  } finally {
    log('cleaning up (services, topics, groups, schemas)');
    await ctx.cleanup();
  }

  const rows = table(results);
  const seconds = (performance.now() - t0) / 1000;
  const loadAtEnd = loadAverage();
  printTable(rows);
  console.log(`load average at start ${loadAtStart}, at end ${loadAtEnd}; run took ${seconds.toFixed(0)} s`);
  const report = {
    runId: ctx.id,
    finishedAt: new Date().toISOString(),
    revision: gitRevision(ROOT),
    durationSeconds: Math.round(seconds),
    loadAverage: { start: loadAtStart, end: loadAtEnd },
    knobs,
    failed: failure ? String((failure as Error).message ?? failure) : undefined,
    results,
    table: rows,
  };
  mkdirSync(`${ROOT}/.cache/bench`, { recursive: true });
  writeFileSync(`${ROOT}/.cache/bench/last.json`, JSON.stringify(report, null, 2) + '\n');
  console.log(`written to .cache/bench/last.json`);
  process.exit(failure ? 1 : 0);
}

void main();

/**
 * Event-to-balance latency under steady load: usage events are produced at a fixed rate for a while; every
 * 100th event goes to its own dedicated account (granted credits beforehand), so that account's balance row
 * changes exactly once, and the time from the producer's ack to the projection's `balance_changed`
 * notification for that account is one sample. pg_notify is delivered at COMMIT of the projection's
 * transaction, i.e. the moment a balance read would first see the new value.
 */
import { Client } from 'pg';
import { accountStreamId } from '@tally/ledger-events';
import { BALANCE_CHANGED_CHANNEL, changedAccounts } from '@tally/ledger-read-models';
import { parsePrometheusText, samplesOf, sumOf, type PrometheusSample } from '@tally/metrics';
import { authHeaders, grantCredits, knobs, log, performance, sleep, summarize, usageEnvelope, usageRequestItem, waitForBalances, type BenchRun } from './bench.harness';
import { startIngest } from './http.bench';
import { ledgerBacklog, waitForLedgerIdle, type LedgerStage } from './ledger-throughput.bench';
import { zipfPicker } from './skewed-load.harness';

export interface LatencyResult {
  rate: number;
  rateReason: string;
  /** The accounts the load went to (besides the samples). */
  accounts: number;
  /** How the load chose among them: round robin (each equally often) or Zipf-skewed (skewed-load.harness.ts). */
  distribution: LoadDistribution;
  /**
   * The ledger's account cache over the run: hits / (hits + misses) of its loads (tally_ledger_account_cache_*),
   * undefined when /metrics could not be read.
   */
  cacheHitRatio?: number;
  achievedRate: number;
  seconds: number;
  samples: number;
  missed: number;
  /** Usage messages not yet applied by the ledger when production ended: > 0 and growing means overload. */
  backlogAtEnd: number;
  /** Seconds after production ended until the ledger and the balances were idle again. */
  drainSeconds: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /**
   * Where the time goes, per sample: ack → the ledger's transaction that appended the debit began (Kafka fetch and
   * the ledger's queue; the event's recorded_at), → the relay published it (the ledger.events.v1 record's
   * timestamp: deciding, committing, the relay's wait for the commit to be visible), → the balance changed (Kafka
   * and the projection).
   */
  stages?: { toLedger: StageLatency; toRelay: StageLatency; toBalance: StageLatency };
  /**
   * The garbage collector's pauses in the two ledger processes while the load ran (prom-client's
   * nodejs_gc_duration_seconds, every kind): each pause stops that process's event loop, so it delays every message in
   * flight there. Undefined for a process whose /metrics could not be read.
   */
  pauses?: { ledger?: GcPauses; projector?: GcPauses };
  /**
   * The two ledger processes' Kafka consumers while the load ran (tally_kafka_consumer_wait_seconds and
   * batch_duration_seconds, every group of the process): how long a partition's chunk waited before its transaction
   * began (the consumer's cycle: the fetch and the transactions before it), and how long that transaction took.
   */
  consumers?: { ledger?: ConsumerCycle; projector?: ConsumerCycle };
}

/** A process's consumer transactions over a run. */
export interface ConsumerCycle {
  /** Chunks committed per second (a transaction shared by several partitions counts once per partition). */
  chunksPerSecond: number;
  wait: Observed;
  transaction: Observed;
}

/**
 * What a histogram of seconds observed, in ms: the mean, and the p99 as the upper bound of the bucket it falls in, or,
 * past the last finite bucket (`p99Above`), that bucket's bound as a lower bound.
 */
export interface Observed {
  meanMs: number;
  p99Ms: number;
  p99Above?: boolean;
}

/** "≤ 250 ms", or "> 10 s" past the last bucket. */
export function p99Bound({ p99Ms, p99Above }: Observed, format: (ms: number) => string): string {
  return `${p99Above ? '>' : '≤'} ${format(p99Ms)}`;
}

export interface GcPauses {
  /** Milliseconds paused per second of the run. */
  msPerSecond: number;
  perSecond: number;
  meanMs: number;
  /** Pauses longer than 10 ms per second (prom-client's histogram has a bucket at 10 ms). */
  over10MsPerSecond: number;
}

/** "12 ms/s (3.1 pauses/s, mean 4.0 ms, 0.2/s over 10 ms)", or "unknown" when the process's metrics were unreadable. */
export const gcText = (gc: GcPauses | undefined): string =>
  gc ? `${gc.msPerSecond.toFixed(0)} ms/s (${gc.perSecond.toFixed(1)} pauses/s, mean ${gc.meanMs.toFixed(1)} ms, ${gc.over10MsPerSecond.toFixed(1)}/s over 10 ms)` : 'unknown';

export interface StageLatency {
  p50: number;
  p99: number;
}

const SAMPLE_EVERY = 100;

/**
 * The rates to measure at: half the measured ledger rate (2× headroom); and when that is below 2,500/s (the
 * ledger missed its 5,000/s target), also the fixed moderate 2,500/s, so both readings of the question are
 * answered and each figure says which rate it is.
 */
export function chooseLatencyRates(measuredEventsPerSec: number | undefined): { rate: number; reason: string }[] {
  if (knobs.latencyRate) return [{ rate: knobs.latencyRate, reason: 'set by BENCH_LATENCY_RATE' }];
  if (measuredEventsPerSec === undefined) return [{ rate: 2_500, reason: 'fixed; throughput not run' }];
  const half = { rate: Math.round(measuredEventsPerSec / 2), reason: 'half the measured rate' };
  if (half.rate >= 2_500) return [half];
  return [half, { rate: 2_500, reason: `fixed moderate rate, ${Math.round((2_500 / measuredEventsPerSec) * 100)}% of measured` }];
}

/** How the usage reaches the ledger: produced to Kafka directly, or POSTed to usage-ingest (the HTTP path). */
export type LatencyPath = 'kafka' | 'http';

/** Sends one tick's usage events and resolves when they are acknowledged (Kafka's ack, or usage-ingest's 202). */
type Send = (events: { id: string; account: string; n: number }[]) => Promise<void>;

async function sender(ctx: BenchRun, stage: LedgerStage, path: LatencyPath): Promise<{ send: Send; stop: () => Promise<void> }> {
  const topic = stage.env.USAGE_EVENTS_TOPIC;
  if (path === 'kafka') {
    const producer = await ctx.producer();
    const send: Send = async (events) => {
      await producer.send({ topic, acks: -1, messages: events.map(({ id, account, n }) => ({ key: account, value: usageEnvelope(id, account, n) })) });
    };
    return { send, stop: async () => undefined };
  }
  const { ingest } = await startIngest(ctx, topic);
  const send: Send = async (events) => {
    for (let from = 0; from < events.length; from += 1_000) {
      const batch = events.slice(from, from + 1_000).map(({ id, account, n }) => usageRequestItem(id, account, n));
      const response = await fetch(`${ingest.base}/v1/usage-events`, { method: 'POST', headers: authHeaders, body: JSON.stringify({ events: batch }) });
      if (response.status !== 202) throw new Error(`POST /v1/usage-events: ${response.status} ${await response.text()}`);
    }
  };
  return { send, stop: () => ingest.kill() };
}

export type LoadDistribution = 'uniform' | 'zipf';

/** What else a latency run can vary: the accounts the load goes to, how long it produces, a name for its ids. */
export interface LatencyOptions {
  path?: LatencyPath;
  /** The accounts the 99 of every 100 events that are not samples go to; by default the stage's customer base. */
  accounts?: string[];
  /** How those events choose their account: `uniform` (round robin, the default) or `zipf` (ZIPF_EXPONENT). */
  distribution?: LoadDistribution;
  seconds?: number;
  /** Makes this run's account and usage ids unique when one bench run measures the same rate twice. */
  label?: string;
}

export async function measureBalanceLatency(ctx: BenchRun, stage: LedgerStage, rate: number, rateReason: string, options: LatencyOptions = {}): Promise<LatencyResult> {
  const { path = 'kafka', accounts = stage.accounts, distribution = 'uniform', seconds = knobs.seconds * 2, label = '' } = options;
  // The account of event n (not a sample): round robin by n, or the next Zipf draw (events are sent in order of n).
  const pick: (n: number) => string = distribution === 'zipf' ? zipfPicker(accounts) : (n) => accounts[n % accounts.length];
  const total = Math.round(rate * seconds);
  const sampleCount = Math.ceil(total / SAMPLE_EVERY);
  // The channel is shared by every ledger on this database (other engineers' tests), and one run measures at
  // several rates: account and usage ids unique to this run, rate and label, or a repeat would be a silent no-op.
  const prefix = `lat${path}${label}${rate}-${ctx.id}`;
  const sampleAccount = (k: number) => `${prefix}-${k}`;
  const sampleAccounts = Array.from({ length: sampleCount }, (_, k) => sampleAccount(k));

  log(`event-to-balance latency (${path === 'http' ? 'HTTP path' : 'Kafka-direct'}): ${rate}/s for ${seconds} s over ${accounts.length} accounts${distribution === 'zipf' ? ', Zipf-skewed' : ''} (${rateReason}); granting ${sampleCount} sample accounts`);
  await grantCredits(stage.ledger.base, sampleAccounts, '10');
  await waitForBalances(ctx.pool, stage.schema, sampleAccounts);

  const ackedAt = new Map<string, number>();
  const notifiedAt = new Map<string, number>();
  const listener = new Client({ connectionString: ctx.databaseUrl });
  await listener.connect();
  listener.on('notification', (message) => {
    if (!message.payload) return;
    const now = performance.now();
    for (const accountId of changedAccounts(message.payload)) {
      if (!notifiedAt.has(accountId) && accountId.startsWith(`${prefix}-`)) notifiedAt.set(accountId, now);
    }
  });
  await listener.query(`LISTEN ${BALANCE_CHANGED_CHANNEL}`);
  // When the relay published each sample's debit to ledger.events.v1 (the record's timestamp, set by the relay's
  // producer on this machine's clock), from a watcher group of our own: it only compares keys, so it costs the
  // 2-core machine little next to the pipeline it watches.
  const relayedAt = new Map<string, number>();
  const watcher = ctx.kafka.consumer({ groupId: `bench-watch-${prefix}`, maxWaitTimeInMs: 50 });
  const joined = new Promise<void>((resolve) => watcher.on(watcher.events.GROUP_JOIN, () => resolve()));
  await watcher.connect();
  await watcher.subscribe({ topic: stage.env.LEDGER_EVENTS_TOPIC, fromBeginning: false });
  await watcher.run({
    eachBatch: async ({ batch }) => {
      for (const message of batch.messages) {
        const key = message.key?.toString();
        if (key?.startsWith(`${prefix}-`) && !relayedAt.has(key) && message.value?.includes('"UsageDebited"')) relayedAt.set(key, Number(message.timestamp) - performance.timeOrigin);
      }
    },
  });
  ctx.onCleanup(`watcher ${prefix}`, () => watcher.disconnect());
  await joined; // it reads from the end: production must not start before it has its partitions

  const { send: sendEvents, stop } = await sender(ctx, stage, path);
  // One scrape of each ledger process: the ledger's gives the cache counters and the GC pauses so far.
  const [ledgerBefore, projectorBefore] = await Promise.all([scrapeMetrics(stage.ledger.base), scrapeMetrics(stage.projector.base)]);
  const cacheBefore = accountCacheCounters(ledgerBefore);
  const gcBefore = [gcTotals(ledgerBefore), gcTotals(projectorBefore)];
  try {
    const inFlight = new Set<Promise<void>>();
    let sent = 0;
    const t0 = performance.now();
    // Every 5 ms, send what the schedule says should have gone by now (catches up after a slow tick instead
    // of drifting below the rate). Sends are not awaited one by one: a steady producer keeps several in flight.
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
      if (due > sent) {
        const events = [];
        const samples: string[] = [];
        for (let n = sent; n < due; n++) {
          const sample = n % SAMPLE_EVERY === 0;
          const account = sample ? sampleAccount(n / SAMPLE_EVERY) : pick(n);
          if (sample) samples.push(account);
          events.push({ id: `${prefix}-u${n}`, account, n });
        }
        sent = due;
        const send = sendEvents(events).then(() => {
          const t = performance.now();
          for (const account of samples) ackedAt.set(account, t);
        });
        inFlight.add(send);
        void send.finally(() => inFlight.delete(send));
        if (inFlight.size > 50) await Promise.race(inFlight);
      }
      await sleep(5);
    }
    await Promise.all(inFlight);
    const producedSeconds = (performance.now() - t0) / 1000;
    const achievedRate = total / producedSeconds;
    const [ledgerAfter, projectorAfter] = await Promise.all([scrapeMetrics(stage.ledger.base), scrapeMetrics(stage.projector.base)]);
    const pauses = { ledger: gcPauses(gcBefore[0], gcTotals(ledgerAfter)), projector: gcPauses(gcBefore[1], gcTotals(projectorAfter)) };
    const consumers = { ledger: consumerCycle(ledgerBefore, ledgerAfter), projector: consumerCycle(projectorBefore, projectorAfter) };
    const backlogAtEnd = await ledgerBacklog(ctx, stage);
    log(`  → produced ${total} events at ${achievedRate.toFixed(0)}/s; ledger backlog ${backlogAtEnd}; waiting for it to drain`);

    // Wait for the ledger to drain (late samples count with their real latency, and the next phase starts on
    // an idle ledger); a sample that never shows up is reported as missed, not silently dropped.
    const drainSeconds = await waitForLedgerIdle(ctx, stage);
    const cacheAfter = accountCacheCounters(await scrapeMetrics(stage.ledger.base));
    const cacheHitRatio = hitRatio(cacheBefore, cacheAfter);
    const settleDeadline = performance.now() + 5_000;
    while (notifiedAt.size < sampleCount && performance.now() < settleDeadline) await sleep(100);

    const { rows: debits } = await ctx.pool.query<{ stream_id: string; recorded_ms: number }>(
      `SELECT stream_id, extract(epoch FROM recorded_at) * 1000 AS recorded_ms FROM "${stage.schema}".events
        WHERE stream_id = ANY($1::text[]) AND type = 'UsageDebited'`,
      [sampleAccounts.map(accountStreamId)],
    );
    const recordedAt = new Map(debits.map((row) => [row.stream_id, Number(row.recorded_ms) - performance.timeOrigin]));

    const latencies: number[] = [];
    const [toLedger, toRelay, toBalance]: number[][] = [[], [], []];
    for (const account of sampleAccounts) {
      const ack = ackedAt.get(account);
      const seen = notifiedAt.get(account);
      const recorded = recordedAt.get(accountStreamId(account));
      const relayed = relayedAt.get(account);
      // A notification can beat the ack's callback by a hair on one broker; that counts as 0 ms, not negative.
      if (ack !== undefined && seen !== undefined) latencies.push(Math.max(0, seen - ack));
      if (ack !== undefined && seen !== undefined && recorded !== undefined && relayed !== undefined) {
        toLedger.push(Math.max(0, recorded - ack));
        toRelay.push(Math.max(0, relayed - Math.max(ack, recorded)));
        toBalance.push(Math.max(0, seen - relayed));
      }
    }
    const stats = summarize(latencies);
    const [ledgerStats, relayStats, balanceStats] = [summarize(toLedger), summarize(toRelay), summarize(toBalance)];
    const stages = {
      toLedger: { p50: ledgerStats.p50, p99: ledgerStats.p99 },
      toRelay: { p50: relayStats.p50, p99: relayStats.p99 },
      toBalance: { p50: balanceStats.p50, p99: balanceStats.p99 },
    };
    const result = { rate, rateReason, accounts: accounts.length, distribution, cacheHitRatio, achievedRate, seconds, samples: stats.n, missed: sampleCount - stats.n, backlogAtEnd, drainSeconds, p50: stats.p50, p95: stats.p95, p99: stats.p99, max: stats.max, stages, pauses, consumers };
    const hits = cacheHitRatio === undefined ? 'unknown' : `${(100 * cacheHitRatio).toFixed(1)}%`;
    log(`  → ${stats.n} samples: p50 ${stats.p50.toFixed(0)} ms, p95 ${stats.p95.toFixed(0)} ms, p99 ${stats.p99.toFixed(0)} ms, max ${stats.max.toFixed(0)} ms (missed ${result.missed}); drained in ${drainSeconds.toFixed(1)} s; account cache hits ${hits}`);
    const part = (name: string, { p50, p99 }: StageLatency) => `${name} p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms`;
    log(`    of which ${part('ack → ledger transaction', stages.toLedger)}; ${part('→ relay published', stages.toRelay)}; ${part('→ balance', stages.toBalance)} (n=${ledgerStats.n})`);
    log(`    garbage collector pauses while producing: ledger ${gcText(pauses.ledger)}; projector ${gcText(pauses.projector)}`);
    const whole = (value: number) => value.toFixed(0);
    const cycle = (name: string, c: ConsumerCycle | undefined) =>
      c
        ? `${name} ${c.chunksPerSecond.toFixed(0)} chunks/s, each waited mean ${c.wait.meanMs.toFixed(0)} ms (p99 ${p99Bound(c.wait, whole)}) ` +
          `before its transaction, which took mean ${c.transaction.meanMs.toFixed(0)} ms (p99 ${p99Bound(c.transaction, whole)})`
        : `${name} unknown`;
    log(`    consumer transactions while producing: ${cycle('ledger', consumers.ledger)}; ${cycle('projector', consumers.projector)}`);
    return result;
  } finally {
    await Promise.all([listener.end(), watcher.disconnect(), stop()]);
  }
}

interface CacheCounters {
  hits: number;
  misses: number;
}

/** A process's /metrics (the process serving `base`) when it was read; undefined if unreadable. */
export interface Scrape {
  samples: PrometheusSample[];
  at: number;
}

export async function scrapeMetrics(base: string): Promise<Scrape | undefined> {
  try {
    const samples = parsePrometheusText(await (await fetch(`${base}/metrics`)).text());
    return { samples, at: performance.now() };
  } catch {
    return undefined;
  }
}

/** The ledger's account cache counters; undefined if unreadable. */
function accountCacheCounters(scrape: Scrape | undefined): CacheCounters | undefined {
  if (!scrape) return undefined;
  const [hits] = samplesOf(scrape.samples, 'tally_ledger_account_cache_hits_total');
  const [misses] = samplesOf(scrape.samples, 'tally_ledger_account_cache_misses_total');
  return hits && misses ? { hits: hits.value, misses: misses.value } : undefined;
}

interface GcTotals {
  seconds: number;
  count: number;
  /** Pauses of at most 10 ms. */
  upTo10Ms: number;
  at: number;
}

/** The process's garbage collector pauses so far, all kinds (prom-client's default metrics); undefined if unreadable. */
export function gcTotals(scrape: Scrape | undefined): GcTotals | undefined {
  if (!scrape) return undefined;
  const count = sumOf(scrape.samples, 'nodejs_gc_duration_seconds_count');
  const upTo10Ms = sumOf(scrape.samples, 'nodejs_gc_duration_seconds_bucket', { le: '0.01' });
  return count > 0 ? { seconds: sumOf(scrape.samples, 'nodejs_gc_duration_seconds_sum'), count, upTo10Ms, at: scrape.at } : undefined;
}

export function gcPauses(before: GcTotals | undefined, after: GcTotals | undefined): GcPauses | undefined {
  if (!before || !after || after.at <= before.at) return undefined;
  const seconds = (after.at - before.at) / 1000;
  const count = after.count - before.count;
  const pausedMs = (after.seconds - before.seconds) * 1000;
  const over10Ms = count - (after.upTo10Ms - before.upTo10Ms);
  return { msPerSecond: pausedMs / seconds, perSecond: count / seconds, meanMs: count > 0 ? pausedMs / count : 0, over10MsPerSecond: over10Ms / seconds };
}

interface HistogramTotals {
  count: number;
  sum: number;
  /** Cumulative count by upper bound (`le`), summed over every label set. */
  buckets: Map<number, number>;
}

/** One histogram of the scrape, every label set added up; undefined if unreadable. */
function histogramTotals(scrape: Scrape | undefined, name: string): HistogramTotals | undefined {
  if (!scrape) return undefined;
  const buckets = new Map<number, number>();
  for (const { labels, value } of samplesOf(scrape.samples, `${name}_bucket`)) {
    const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + value);
  }
  return { count: sumOf(scrape.samples, `${name}_count`), sum: sumOf(scrape.samples, `${name}_sum`), buckets };
}

/** What a histogram of seconds observed between two scrapes, and how many observations. */
function observedBetween(before: HistogramTotals | undefined, after: HistogramTotals | undefined): (Observed & { count: number }) | undefined {
  if (!before || !after) return undefined;
  const count = after.count - before.count;
  if (count <= 0) return undefined;
  const bounds = [...after.buckets.keys()].filter(Number.isFinite).sort((a, b) => a - b);
  const p99 = bounds.find((le) => (after.buckets.get(le) ?? 0) - (before.buckets.get(le) ?? 0) >= 0.99 * count);
  const meanMs = ((after.sum - before.sum) / count) * 1000;
  return p99 === undefined ? { count, meanMs, p99Ms: (bounds[bounds.length - 1] ?? 0) * 1000, p99Above: true } : { count, meanMs, p99Ms: p99 * 1000 };
}

function consumerCycle(before: Scrape | undefined, after: Scrape | undefined): ConsumerCycle | undefined {
  const wait = observedBetween(histogramTotals(before, 'tally_kafka_consumer_wait_seconds'), histogramTotals(after, 'tally_kafka_consumer_wait_seconds'));
  const transaction = observedBetween(
    histogramTotals(before, 'tally_kafka_consumer_batch_duration_seconds'),
    histogramTotals(after, 'tally_kafka_consumer_batch_duration_seconds'),
  );
  if (!before || !after || !wait || !transaction) return undefined;
  return { chunksPerSecond: wait.count / ((after.at - before.at) / 1000), wait, transaction };
}

function hitRatio(before: CacheCounters | undefined, after: CacheCounters | undefined): number | undefined {
  if (!before || !after) return undefined;
  const hits = after.hits - before.hits;
  const loads = hits + after.misses - before.misses;
  return loads > 0 ? hits / loads : undefined;
}

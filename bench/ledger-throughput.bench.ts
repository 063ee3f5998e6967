/**
 * Ledger throughput on the Kafka-direct path: N usage events are already waiting on usage.events.v1 when the
 * ledger starts, so the figures are the ledger's own sustained rates, not the producer's: the usage consumer's
 * (parse + price + decide + append + partition offsets, one PostgreSQL transaction per batch), and end to end,
 * until the relay has published every event and the projection has put it in the balances.
 */
import { readStoredOffsets } from '@tally/kafka';
import type { ServiceProcess } from '@tally/testing';
import type { Producer } from 'kafkajs';
import { readFileSync } from 'node:fs';
import { clientMicros, clientsText, cpuByClient, readBackendCpu } from './postgres-clients.harness';
import { PostgresStatements, type StatementTime } from './postgres-statements.harness';
import { cpuSeconds, cpuSecondsOfProcesses, grantCredits, knobs, log, performance, sleep, usageEnvelope, waitFor, waitForBalances, type BenchRun } from './bench.harness';

/** A ledger with its own schema and topics, and a customer base of accounts that already have credits. */
export interface LedgerStage {
  schema: string;
  env: Record<string, string>;
  ledger: ServiceProcess;
  /** The same app with WORKERS=projection (BENCH_PROJECTOR_WORKERS): the read models on the second core. */
  projector: ServiceProcess;
  accounts: string[];
}

export const accountId = (i: number) => `acct-${i}`;

export async function setUpLedger(ctx: BenchRun): Promise<LedgerStage> {
  const schema = await ctx.createSchema('ledger');
  // The deployment the README recommends for a 2-core machine: one process decides and relays, one projects.
  const env: Record<string, string> = { ...ctx.ledgerEnv(schema), WORKERS: knobs.ledgerWorkers };
  await ctx.createTopics([
    env.USAGE_EVENTS_TOPIC, env.USAGE_DLQ_TOPIC, env.SUBSCRIPTION_EVENTS_TOPIC, env.SUBSCRIPTION_DLQ_TOPIC, env.LEDGER_EVENTS_TOPIC, env.LEDGER_DLQ_TOPIC,
  ]);
  const ledger = await ctx.startService('ledger', env);
  const projector = await ctx.startService('ledger', { ...env, WORKERS: knobs.projectorWorkers });
  const accounts = Array.from({ length: knobs.accounts }, (_, i) => accountId(i));
  const t0 = performance.now();
  // Plenty of credits: the run measures debits from a bucket, not overdraft (each debit costs ~0.0003 credits).
  await grantCredits(ledger.base, accounts, '1000');
  await waitForBalances(ctx.pool, schema, accounts);
  log(`granted credits to ${accounts.length} accounts in ${((performance.now() - t0) / 1000).toFixed(1)} s (ledger processes: WORKERS=${knobs.ledgerWorkers} and ${knobs.projectorWorkers})`);
  return { schema, env, ledger, projector, accounts };
}

/** Usage messages on the ledger's topic not yet applied (high watermarks minus the offsets stored with effects). */
export async function ledgerBacklog(ctx: BenchRun, stage: LedgerStage): Promise<number> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(stage.env.USAGE_EVENTS_TOPIC);
    const produced = offsets.reduce((sum, p) => sum + Number(p.high), 0);
    return produced - (await appliedMessages(ctx, stage.schema, stage.env.CONSUMER_GROUP, stage.env.USAGE_EVENTS_TOPIC));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Waits until the ledger applied everything on its topic and the balances caught up, so phases never overlap. Polled
 * on a few rows (offsets); the balances are compared with the streams, a pass over both tables, only once the
 * projector's offsets say it is done.
 */
export async function waitForLedgerIdle(ctx: BenchRun, stage: LedgerStage, timeoutMs = 300_000): Promise<number> {
  const t0 = performance.now();
  let stored: number | undefined;
  await waitFor(async () => {
    if ((await ledgerBacklog(ctx, stage)) > 0) return false;
    stored ??= await storedEvents(ctx, stage.schema);
    if ((await projectedEvents(ctx, stage)) < stored) return false;
    return balancesComplete(ctx, stage.schema);
  }, timeoutMs, 250);
  return (performance.now() - t0) / 1000;
}

/** Events in the stage's event store: a stream's version is its number of events (a pass over the streams). */
async function storedEvents(ctx: BenchRun, schema: string): Promise<number> {
  const { rows } = await ctx.pool.query(`select coalesce(sum(version), 0)::bigint as n from "${schema}".streams`);
  return Number(rows[0].n);
}

/**
 * Ledger events the projector has applied: its offsets on the stage's ledger topic, which it stores in the transaction
 * that writes the read models, and the relay publishes every stored event there. Six rows, where summing the balances
 * is a pass over a table of up to a million rows: polled ten times a second, that took seconds of PostgreSQL's CPU
 * from the run it measured (the 1,000,000-account phase read 170 M balance rows, docs/benchmarks.md session 32).
 */
async function projectedEvents(ctx: BenchRun, stage: LedgerStage): Promise<number> {
  return appliedMessages(ctx, stage.schema, stage.env.PROJECTION_GROUP, stage.env.LEDGER_EVENTS_TOPIC);
}

/** Messages a consumer group has applied on a topic: the offsets it stores with its effects (readStoredOffsets), summed. */
async function appliedMessages(ctx: BenchRun, schema: string, groupId: string, topic: string): Promise<number> {
  let applied = 0;
  for (const offset of (await readStoredOffsets(ctx.pool, schema, groupId, topic)).values()) applied += Number(offset) + 1;
  return applied;
}

/**
 * The balance read model is complete: every account's row carries its stream's last version. Exact where the offsets
 * are not (a relay that published an event twice moves them past the store), so the offsets only say when to look.
 */
async function balancesComplete(ctx: BenchRun, schema: string): Promise<boolean> {
  const { rows } = await ctx.pool.query(
    `select (select coalesce(sum(version), 0) from "${schema}".streams where stream_id like 'account-%')
          = (select coalesce(sum(stream_version), 0) from "${schema}".balances) as complete`,
  );
  return rows[0].complete === true;
}

export interface ThroughputResult {
  events: number;
  /**
   * events/s from the first committed batch until the balance read model reflected every event: decided, appended
   * with offsets, published by the relay and projected (issue 17's "sustained usage events/s through the ledger").
   */
  endToEndPerSec: number;
  /** events/s from the first committed batch to the last: the usage consumer alone (decide + append + offsets). */
  eventsPerSec: number;
  /** events/s including the ledger's cold start after /health (group join, first fetch, cache misses). */
  eventsPerSecFromReady: number;
  ledgerSeconds: number;
  preProduceEventsPerSec: number;
  /** Seconds from the first committed batch until the balance read model reflected every event. */
  projectionSeconds: number;
  /** How far the balance read model finished behind the event store. */
  projectionLagSeconds: number;
  /** The ledger process's CPU use while applying, in % of one core (Node runs the hot path on one thread). */
  ledgerCpuPercent?: number;
  /** The projector process's (WORKERS=projection) CPU use over the same interval. */
  projectorCpuPercent?: number;
  /**
   * Where the machine's CPU went from /health until every balance was projected, in % of one core: the ledger
   * (commands and relay), the projector, every PostgreSQL backend of the (shared) cluster and the Kafka broker.
   */
  cpuSplit: { ledger?: number; projector?: number; postgres?: number; kafka?: number };
  /** Accounts the load was spread over. */
  accounts: number;
  /**
   * Events the run stored per usage (a usage on an account with credits stores one UsageDebited; on a new account it
   * also opens it and records its overdraft and depletion: four), so runs of different populations compare per event.
   */
  storedEventsPerUsage: number;
  /**
   * The machine's CPU (ledger, projector, PostgreSQL, Kafka) from /health until every balance was projected, in µs per
   * usage and per stored event: the cost curve across populations, which rates alone hide when the work per usage differs.
   */
  cpuMicros?: { perUsage: number; perStoredEvent: number };
  /** The ledger process's resident memory when it had applied everything, and its peak, MB. */
  ledgerRssMb?: number;
  ledgerPeakRssMb?: number;
  /** PostgreSQL's time in this stage's statements, per usage event, from /health until every balance was projected; only where pg_stat_statements is preloaded. */
  postgresStatements?: StatementTime[];
  /** PostgreSQL's CPU by the client whose session it served (`application_name`), µs per usage; `other` what no session took. */
  postgresByClient?: Record<string, number>;
}

/** Produces `count` usage events keyed by account, several sends in flight, and returns events/s acknowledged. */
export async function preProduce(producer: Producer, topic: string, accounts: string[], count: number, runId: string): Promise<number> {
  const batchSize = 1000;
  const inFlight = 6;
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < count) {
      const start = next;
      next = Math.min(count, next + batchSize);
      const messages = [];
      for (let n = start; n < next; n++) {
        const account = accounts[n % accounts.length];
        messages.push({ key: account, value: usageEnvelope(`bench-${runId}-${n}`, account, n) });
      }
      await producer.send({ topic, acks: -1, messages });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return count / ((performance.now() - t0) / 1000);
}

/** What a throughput run sends: `events` usage events spread over `accounts` (by default the stage's customer base). */
export interface ThroughputLoad {
  events: number;
  accounts: string[];
  /** Makes the usage ids unique to this load. */
  runId: string;
}

export async function measureThroughput(ctx: BenchRun, stage: LedgerStage, load?: ThroughputLoad): Promise<ThroughputResult> {
  const { env, schema } = stage;
  const { events: n, accounts, runId } = load ?? { events: knobs.events, accounts: stage.accounts, runId: ctx.id };
  const debitsBefore = await countDebits(ctx, schema);
  const storedBefore = await storedEvents(ctx, schema);
  // Progress is read from the ledger's own partition offsets: they are written in the same transaction as the
  // UsageDebited events, so "offsets applied" = "debits in the event store", and reading 6 rows costs nothing,
  // unlike count(*) over a growing jsonb table that would steal CPU from the ledger on a 2-core machine.
  const applied = (): Promise<number> => appliedMessages(ctx, schema, env.CONSUMER_GROUP, env.USAGE_EVENTS_TOPIC).catch(() => 0);
  // What earlier phases applied on this topic (the ledger is idle between phases): this run counts from there.
  const appliedBefore = await applied();

  // Stop the ledger so the whole load waits in Kafka, then start a fresh process on it (cold account cache:
  // each account's first batch folds its stream from the event store, as after a deploy).
  await stage.ledger.kill();
  const producer = await ctx.producer();
  log(`pre-producing ${n} usage events over ${accounts.length} accounts to ${env.USAGE_EVENTS_TOPIC}`);
  const preProduceEventsPerSec = await preProduce(producer, env.USAGE_EVENTS_TOPIC, accounts, n, runId);
  log(`  → produced at ${preProduceEventsPerSec.toFixed(0)} events/s; starting the ledger`);

  const statements = await PostgresStatements.open(ctx.pool);
  stage.ledger = await ctx.startService('ledger', env);
  await statements?.reset();
  const ready = performance.now();
  const cpuAtReady = cpuSeconds(stage.ledger.child.pid);
  const projectorCpuAtReady = cpuSeconds(stage.projector.child.pid);
  const postgresCpuAtReady = cpuSecondsOfProcesses('postgres');
  const kafkaCpuAtReady = cpuSecondsOfProcesses('java');
  const backendsAtReady = await readBackendCpu(ctx.pool);

  let first: { t: number; count: number } | undefined;
  let done = 0;
  // Fail on a stall (no progress for a minute), not on a fixed deadline: slow is a figure, stuck is a failure.
  let progress = { t: performance.now(), count: 0 };
  let lastLog = performance.now();
  for (;;) {
    const count = (await applied()) - appliedBefore;
    const t = performance.now();
    if (!first && count > 0) first = { t, count };
    if (count >= n) {
      done = t;
      break;
    }
    if (count > progress.count) progress = { t, count };
    if (t - progress.t > 60_000) {
      throw new Error(`ledger stalled at ${count}/${n} events; its output:\n${stage.ledger.output().slice(-3000)}`);
    }
    if (t - lastLog > 5_000) {
      log(`  … ${count}/${n} applied`);
      lastLog = t;
    }
    await sleep(100);
  }
  const memory = memoryMegabytes(stage.ledger.child.pid);
  if (!first) throw new Error('the ledger applied every event before the first poll saw one');
  const ledgerSeconds = (done - first.t) / 1000;
  const eventsPerSec = (n - first.count) / ledgerSeconds;
  const eventsPerSecFromReady = n / ((done - ready) / 1000);
  const cpuAtDone = cpuSeconds(stage.ledger.child.pid);
  const cpuPercent = (from?: number, to?: number) => (from !== undefined && to !== undefined ? (100 * (to - from)) / ((done - ready) / 1000) : undefined);
  const ledgerCpuPercent = cpuPercent(cpuAtReady, cpuAtDone);
  const projectorCpuPercent = cpuPercent(projectorCpuAtReady, cpuSeconds(stage.projector.child.pid));
  log(
    `  → ledger applied ${n} events: ${eventsPerSec.toFixed(0)} events/s sustained, ${eventsPerSecFromReady.toFixed(0)} events/s from /health; ` +
      `CPU of one core: ledger ${ledgerCpuPercent?.toFixed(0) ?? 'n/a'}%, projector ${projectorCpuPercent?.toFixed(0) ?? 'n/a'}%`,
  );

  // The balance read model is complete when the projector has applied every stored event (its offsets, a few rows),
  // confirmed by every account's row carrying its stream's last version (read once, after the time is taken; the
  // exact counts, which read whole tables, wait until then too, so the run does not pay for its own checks).
  const wanted = await storedEvents(ctx, schema);
  let projected = 0;
  lastLog = performance.now();
  for (;;) {
    const now = await projectedEvents(ctx, stage);
    projected = performance.now();
    if (now >= wanted && (await balancesComplete(ctx, schema))) break;
    if (projected - lastLog > 5_000) {
      log(`  … projector at ${now}/${wanted} events`);
      lastLog = projected;
    }
    if (projected - done > Math.max(120_000, n)) {
      // The relay reads only transactions older than the oldest running one of its database (TAIL_BOUND_SQL), so
      // name the oldest open transactions: a stall here is usually one of them.
      const { rows: open } = await ctx.pool.query(
        `select pid, datname, state, round(extract(epoch from now() - xact_start))::int as seconds, left(query, 80) as query
           from pg_stat_activity where backend_xid is not null or backend_xmin is not null order by xact_start limit 5`,
      );
      throw new Error(`the balance read model did not catch up within ${Math.round(Math.max(120_000, n) / 1000)} s (${now}/${wanted}); oldest transactions: ${JSON.stringify(open)}\nledger output: ${stage.ledger.output().slice(-2000)}\nprojector output: ${stage.projector.output().slice(-2000)}`);
    }
    await sleep(100);
  }
  const projectionSeconds = (projected - first.t) / 1000;
  const projectionLagSeconds = (projected - done) / 1000;
  const endToEndPerSec = (n - first.count) / projectionSeconds;
  const share = (from: number | undefined, to: number | undefined) =>
    from !== undefined && to !== undefined ? (100 * (to - from)) / ((projected - ready) / 1000) : undefined;
  const postgresCpuAtEnd = cpuSecondsOfProcesses('postgres');
  const cpuSplit = {
    ledger: share(cpuAtReady, cpuSeconds(stage.ledger.child.pid)),
    projector: share(projectorCpuAtReady, cpuSeconds(stage.projector.child.pid)),
    postgres: share(postgresCpuAtReady, postgresCpuAtEnd),
    kafka: share(kafkaCpuAtReady, cpuSecondsOfProcesses('java')),
  };
  const postgresByClient = clientMicros(cpuByClient([backendsAtReady, await readBackendCpu(ctx.pool)]), n, postgresCpuAtReady, postgresCpuAtEnd);
  const stored = wanted - storedBefore;
  const cpuMicros = machineCpuMicros(cpuSplit, (projected - ready) / 1000, n, stored);
  log(
    `  → balances reflected all events ${projectionSeconds.toFixed(1)} s after the first batch (${projectionLagSeconds.toFixed(1)} s after the last append): ` +
      `${endToEndPerSec.toFixed(0)} events/s end to end; CPU of one core until then: ledger ${cpuSplit.ledger?.toFixed(0) ?? 'n/a'}%, ` +
      `projector ${cpuSplit.projector?.toFixed(0) ?? 'n/a'}%, PostgreSQL ${cpuSplit.postgres?.toFixed(0) ?? 'n/a'}%, Kafka ${cpuSplit.kafka?.toFixed(0) ?? 'n/a'}%`,
  );
  log(`    PostgreSQL's CPU by client, µs per usage: ${clientsText(postgresByClient)}`);
  // Read before the checks below, which scan whole tables of the stage.
  const postgresStatements = await statements?.perEvent(schema, n);
  // Exact check the brief asks for: every usage event is a UsageDebited in the event store.
  const debits = (await countDebits(ctx, schema)) - debitsBefore;
  if (debits !== n) throw new Error(`expected ${n} UsageDebited, found ${debits}`);
  return {
    events: n, accounts: accounts.length, endToEndPerSec, eventsPerSec, eventsPerSecFromReady, ledgerSeconds, preProduceEventsPerSec, projectionSeconds,
    projectionLagSeconds, ledgerCpuPercent, projectorCpuPercent, cpuSplit, ledgerRssMb: memory?.rss, ledgerPeakRssMb: memory?.peak, postgresStatements,
    storedEventsPerUsage: stored / n, cpuMicros, postgresByClient,
  };
}

/** The four processes' CPU over `seconds` (their shares in % of one core), in µs per usage and per stored event; undefined if one was not read. */
export function machineCpuMicros(
  split: ThroughputResult['cpuSplit'],
  seconds: number,
  usages: number,
  storedEvents: number,
): ThroughputResult['cpuMicros'] {
  const shares = [split.ledger, split.projector, split.postgres, split.kafka];
  if (shares.some((share) => share === undefined) || usages <= 0 || storedEvents <= 0) return undefined;
  const cpuMicroseconds = (shares as number[]).reduce((sum, share) => sum + share, 0) * seconds * 1e4; // % of a core × s → µs
  return { perUsage: cpuMicroseconds / usages, perStoredEvent: cpuMicroseconds / storedEvents };
}

async function countDebits(ctx: BenchRun, schema: string): Promise<number> {
  const { rows } = await ctx.pool.query(`select count(*)::int as n from "${schema}".events where type = 'UsageDebited'`);
  return rows[0].n as number;
}

/** A process's resident memory now and at its peak (VmRSS, VmHWM), in MB. */
function memoryMegabytes(pid: number | undefined): { rss: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
    return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

import { ensureTopics } from '@tally/kafka';
/**
 * Shared helpers for the benchmark scripts (bench/*.bench.ts, run by bench/main.ts through bench/run.sh).
 *
 * Benchmarks are scripts, not tests: they start the services as real processes, drive them with real Kafka,
 * PostgreSQL and HTTP load, and print figures next to the raw limits of the same machine measured in the same
 * run (the machines are shared and noisy, so only same-run ratios mean anything).
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { Pool } from 'pg';
import { hashApiKey } from '@tally/shared';
import { createTestSchema, startServiceProcess, testDatabaseUrl, testKafkaBrokers, uniqueSuffix, waitFor, type ServiceProcess, type ServiceRuntime } from '@tally/testing';

export { performance, waitFor };

// ---------------------------------------------------------------------------------------------------------------
// Knobs (environment), so development runs can stay small on a shared 2-core machine.
// ---------------------------------------------------------------------------------------------------------------

const int = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return value;
};

export const knobs = {
  /** Usage events pre-produced for the ledger throughput figure. */
  events: int('BENCH_EVENTS', 100_000),
  /** Base duration in seconds; each phase scales from it (latency 2×, authorization 1.5×, /health 0.5×). */
  seconds: int('BENCH_SECONDS', 10),
  /** Accounts that share the throughput load (each gets a grant first, like a real customer base). */
  accounts: int('BENCH_ACCOUNTS', 1_000),
  partitions: int('BENCH_PARTITIONS', 6),
  kafkaPerfRecords: int('BENCH_KAFKA_RECORDS', 200_000),
  /** Events in the store whose readAll is measured (phase store). */
  storeEvents: int('BENCH_STORE_EVENTS', 1_000_000),
  /** Account populations the scale phase spreads one usage event each over (new accounts, a cold cache). */
  scaleAccounts: (process.env.BENCH_SCALE_ACCOUNTS ?? '100000,1000000').split(',').map((v) => Number(v.trim())).filter((v) => Number.isSafeInteger(v) && v > 0),
  /**
   * Usage events per transaction in the projection phase. 500 by default, the projector's batches at full rate;
   * at half rate its chunks are ~50, where a statement's own per-call cost (parse, plan) shows ~10× as much.
   */
  projectionBatch: int('BENCH_PROJECTION_BATCH', 500),
  /** Events in the one account stream whose cold load is measured (phase coldload). */
  streamEvents: int('BENCH_STREAM_EVENTS', 100_000),
  /** Overrides the event-to-balance latency rate (events/s) instead of deriving it from the throughput. */
  latencyRate: process.env.BENCH_LATENCY_RATE ? int('BENCH_LATENCY_RATE', 2_500) : undefined,
  /**
   * How the services run: `compiled` (default), the build the Docker image runs (bench/run.sh builds it first with
   * scripts/build.sh); `source`, through ts-node as scripts/up.sh does in development, whose TypeScript compiler
   * stays in every service's memory (ledger RSS 771 against 712 MB compiled, with 100,000 accounts) and skews the RSS figures.
   */
  runtime: process.env.BENCH_RUNTIME === 'source' ? ('source' as const) : ('compiled' as const),
  /**
   * The two ledger processes' WORKERS (README: the deployment recommended for 2 cores), to compare other splits, e.g.
   * BENCH_LEDGER_WORKERS=commands BENCH_PROJECTOR_WORKERS=relay,projection; the ledger validates them at start.
   */
  ledgerWorkers: process.env.BENCH_LEDGER_WORKERS ?? 'commands,relay',
  projectorWorkers: process.env.BENCH_PROJECTOR_WORKERS ?? 'projection',
  /** Comma-separated subset of phases to run (bench/main.ts lists them). */
  only: (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean),
};

export const phaseEnabled = (phase: string): boolean => knobs.only.length === 0 || knobs.only.includes(phase);

// ---------------------------------------------------------------------------------------------------------------
// Logging and small utilities
// ---------------------------------------------------------------------------------------------------------------

const started = performance.now();
export const log = (message: string): void => {
  process.stdout.write(`[bench +${((performance.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
};

export { setTimeout as sleep } from 'node:timers/promises';

export const loadAverage = (): string => loadavg().map((n) => n.toFixed(2)).join(' ');

export { percentile, summarize } from './percentiles.harness';

/** Runs `task` over `items` with at most `limit` in flight (grants over HTTP, without flooding a 2-core box). */
export async function inParallel<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); undefined elsewhere. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  try {
    return cpuSecondsOfStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) this process has used so far, as `cpuSeconds` reads another's. */
export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** The CPU between two readings of `cpuSeconds` (or `cpuSecondsOfProcesses`), in µs for each of `count` things done; undefined if either was not read. */
export function cpuMicrosEach(count: number, before: number | undefined, after: number | undefined): number | undefined {
  return before === undefined || after === undefined || count === 0 ? undefined : ((after - before) * 1e6) / count;
}

/**
 * CPU seconds used so far by every process of the machine whose name (stat's comm) is `name`: `postgres` (every
 * backend of the shared cluster, whichever database it serves) or `java` (the Kafka broker). Undefined off Linux.
 * A backend that exits between two readings leaves the sum of the live ones, so each process's reaped children
 * count too (the postmaster's, for the backends it has waited for): the total only grows.
 */
export function cpuSecondsOfProcesses(name: string): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return undefined;
  }
  let total = 0;
  for (const pid of entries) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) === name) total += cpuSecondsOfStat(stat, { reapedChildren: true });
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return total;
}

/**
 * utime + stime of a /proc/<pid>/stat line, in seconds (fields 14 and 15 of stat(5); the name may hold spaces), and
 * with `reapedChildren` cutime + cstime too (16 and 17: the children it has waited for).
 */
function cpuSecondsOfStat(stat: string, { reapedChildren = false } = {}): number {
  // Counted from field 3 (state), right after the name's closing parenthesis, at index 0.
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  const own = Number(fields[11]) + Number(fields[12]);
  return (reapedChildren ? own + Number(fields[13]) + Number(fields[14]) : own) / 100;
}

export function run(command: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: options.cwd, timeout: options.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} failed: ${error.message}\n${stderr.slice(-2000)}`));
      else resolve({ stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Run context: one unique id per run for topics, groups, schemas; everything created is registered for cleanup.
// ---------------------------------------------------------------------------------------------------------------

export const API_KEY = `bench-${uniqueSuffix()}-admin-key`;

export type Cleanup = () => Promise<void>;

export class BenchRun {
  readonly id = uniqueSuffix();
  readonly brokers = testKafkaBrokers();
  readonly databaseUrl = testDatabaseUrl();
  readonly kafka = new Kafka({ clientId: `bench-${this.id}`, brokers: this.brokers, logLevel: logLevel.NOTHING });
  readonly pool = new Pool({ connectionString: this.databaseUrl, max: 6, application_name: 'tally-bench' });
  private readonly cleanups: { name: string; fn: Cleanup }[] = [];
  private readonly topics: string[] = [];
  private readonly groups: string[] = [];

  topic(name: string): string {
    return `bench.${this.id}.${name}`;
  }

  /** Registers cleanup work; run in reverse order (services stop before their schema is dropped). */
  onCleanup(name: string, fn: Cleanup): void {
    this.cleanups.push({ name, fn });
  }

  async createTopics(names: string[], partitions = knobs.partitions): Promise<void> {
    await ensureTopics(this.kafka, names, partitions);
    this.topics.push(...names);
  }

  async createSchema(prefix: string): Promise<string> {
    const { schema, drop } = await createTestSchema(`bench_${prefix}`);
    this.onCleanup(`drop schema ${schema}`, drop);
    return schema;
  }

  /** A unique topic set and consumer groups for one ledger, in the env shape the e2e tests use. */
  ledgerEnv(schema: string): Record<string, string> {
    const groups = { CONSUMER_GROUP: `bench-ledger-${this.id}`, PROJECTION_GROUP: `bench-projections-${this.id}` };
    this.groups.push(groups.CONSUMER_GROUP, `${groups.CONSUMER_GROUP}-subscriptions`, groups.PROJECTION_GROUP);
    return {
      DATABASE_URL: this.databaseUrl,
      DATABASE_SCHEMA: schema,
      KAFKA_BROKERS: this.brokers.join(','),
      USAGE_EVENTS_TOPIC: this.topic('usage.events.v1'),
      USAGE_DLQ_TOPIC: this.topic('usage.events.dlq.v1'),
      SUBSCRIPTION_EVENTS_TOPIC: this.topic('subscription.events.v1'),
      SUBSCRIPTION_DLQ_TOPIC: this.topic('subscription.events.dlq.v1'),
      LEDGER_EVENTS_TOPIC: this.topic('ledger.events.v1'),
      LEDGER_DLQ_TOPIC: this.topic('ledger.events.dlq.v1'),
      ...groups,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      API_KEYS: JSON.stringify([{ name: 'bench', sha256: hashApiKey(API_KEY), scopes: ['admin'] }]),
    };
  }

  /** Starts a service as a real process (as scripts/up.sh does); stopped at cleanup unless stopped earlier. */
  async startService(app: string, env: Record<string, string>): Promise<ServiceProcess> {
    const t0 = performance.now();
    const runtime: ServiceRuntime = knobs.runtime === 'compiled' ? { kind: 'compiled', node: process.execPath } : { kind: 'source' };
    const service = await startServiceProcess(app, env, 180_000, '/health/ready', runtime);
    log(`${app} up on :${service.port} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    this.onCleanup(`stop ${app}:${service.port}`, () => service.kill());
    return service;
  }

  async producer(): Promise<Producer> {
    // Same settings as the services' producer (libs/kafka KafkaProducer) minus idempotence, so many sends can
    // be in flight at once: the pre-produce and the steady-rate producer must not be the bottleneck.
    const producer = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    await producer.connect();
    this.onCleanup('disconnect producer', () => producer.disconnect());
    return producer;
  }

  async cleanup(): Promise<void> {
    for (const { name, fn } of this.cleanups.reverse()) {
      await fn().catch((error: unknown) => log(`cleanup "${name}" failed: ${(error as Error).message}`));
    }
    const admin = this.kafka.admin();
    await admin.connect().catch(() => undefined);
    if (this.groups.length > 0) await admin.deleteGroups(this.groups).catch(() => undefined);
    if (this.topics.length > 0) await admin.deleteTopics({ topics: this.topics }).catch((e: unknown) => log(`topic cleanup failed: ${(e as Error).message}`));
    await admin.disconnect().catch(() => undefined);
    await this.pool.end();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Domain fixtures
// ---------------------------------------------------------------------------------------------------------------

/** A chat answer from gpt-4o-mini with realistic token counts (varied so prices differ). */
export function usageEnvelope(id: string, accountId: string, n: number): string {
  return JSON.stringify({
    id,
    type: 'UsageRecorded',
    version: 1,
    accountId,
    occurredAt: new Date().toISOString(),
    data: { feature: 'chat', model: 'gpt-4o-mini', inputTokens: 400 + (n % 800), outputTokens: 150 + (n % 300) },
  });
}

/** The same usage as an HTTP request item for usage-ingest. */
export function usageRequestItem(id: string, accountId: string, n: number): object {
  return { id, accountId, occurredAt: new Date().toISOString(), feature: 'chat', model: 'gpt-4o-mini', inputTokens: 400 + (n % 800), outputTokens: 150 + (n % 300) };
}

export const authHeaders = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };

/** Gives each account credits through the ledger's HTTP API, the way a product would at sign-up. */
export async function grantCredits(base: string, accountIds: string[], amount: string, concurrency = 16): Promise<void> {
  await inParallel(accountIds, concurrency, async (accountId) => {
    const response = await fetch(`${base}/v1/accounts/${accountId}/grants`, {
      method: 'POST',
      headers: authHeaders,
      body: JSON.stringify({ idempotencyKey: `bench-grant-${accountId}`, amount, reason: 'bench credits' }),
    });
    if (response.status !== 201 && response.status !== 200) throw new Error(`grant ${accountId}: ${response.status} ${await response.text()}`);
  });
}

/** Waits until the balance read model has a row for every account (the projection caught up with the grants). */
export async function waitForBalances(pool: Pool, schema: string, accountIds: string[], timeoutMs = 120_000): Promise<void> {
  await waitFor(async () => {
    const { rows } = await pool.query(`select count(*)::int as n from "${schema}".balances where account_id = any($1)`, [accountIds]);
    return rows[0].n === accountIds.length;
  }, timeoutMs, 200);
}

// ---------------------------------------------------------------------------------------------------------------
// Autocannon (in-process; its own CPU use is part of the load on a 2-core machine, noted in the report)
// ---------------------------------------------------------------------------------------------------------------

// autocannon ships no types; the slice used here.
export interface AutocannonResult {
  requests: { average: number; total: number; sent: number };
  latency: { p50: number; p90: number; p99: number; max: number; average: number };
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}

const autocannonLib = require('autocannon') as (options: object) => Promise<AutocannonResult>;

export async function autocannon(options: object): Promise<AutocannonResult> {
  return autocannonLib(options);
}

export function gitRevision(root: string): string {
  try {
    const head = readFileSync(`${root}/.git/HEAD`, 'utf8').trim();
    if (!head.startsWith('ref: ')) return head.slice(0, 12);
    return readFileSync(`${root}/.git/${head.slice(5)}`, 'utf8').trim().slice(0, 12);
  } catch {
    return 'unknown';
  }
}

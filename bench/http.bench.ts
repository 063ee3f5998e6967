/**
 * HTTP figures with autocannon: usage-ingest's batched POST /v1/usage-events at max rate, and the ledger's
 * POST /v1/accounts/:id/authorizations at a fixed 1,000 requests/s — each next to the raw HTTP limit of the
 * same process (GET /health and a 401 refused by the API-key guard, each at max rate).
 *
 * autocannon runs inside this script's process; on a 2-core machine its CPU is part of the load, which is why
 * the raw /health figure is measured the same way, in the same run.
 */
import { spawn } from 'node:child_process';
import { hashApiKey } from '@tally/shared';
import { sumOf } from '@tally/metrics';
import type { ServiceProcess } from '@tally/testing';
import { API_KEY, authHeaders, autocannon, cpuMicrosEach, cpuSeconds, cpuSecondsOfProcesses, knobs, log, usageRequestItem, type AutocannonResult, type BenchRun } from './bench.harness';
import type { LedgerStage } from './ledger-throughput.bench';
import { pacedLoad } from './paced-load.harness';
import { gcPauses, gcText, gcTotals, scrapeMetrics, type GcPauses } from './balance-latency.bench';

export interface HttpFigure {
  requestsPerSec: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  requests: number;
}

const non2xx = (r: AutocannonResult) => r.non2xx + r.errors + r.timeouts;

function figure(result: AutocannonResult): HttpFigure {
  const ok = result['2xx'];
  return { requestsPerSec: ok / result.duration, p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max, errors: non2xx(result), requests: result.requests.total };
}

export interface RawHttp {
  /** GET /health: the brief's raw limit, but it runs `select 1` and opens a Kafka admin connection per call. */
  health: HttpFigure;
  /** A request the API-key guard refuses (401) before any handler or I/O: the process's HTTP floor. */
  floor: HttpFigure;
}

/** The same process's raw HTTP limits at max rate, measured right after the figure they stand next to. */
export async function rawHttpLimits(service: ServiceProcess, seconds: number): Promise<RawHttp> {
  const health = figure(await autocannon({ url: `${service.base}/health`, connections: 20, duration: seconds }));
  log(`  raw GET /health: ${health.requestsPerSec.toFixed(0)} req/s, p50 ${health.p50} ms, p99 ${health.p99} ms`);
  const refused = await autocannon({ url: `${service.base}/v1/accounts/raw-limit/balance`, connections: 20, duration: seconds });
  // Here the 401s are the expected answer: count them as successes.
  const floor = { ...figure(refused), requestsPerSec: refused.requests.total / refused.duration, errors: refused.errors + refused.timeouts };
  log(`  raw 401 (guard, no I/O): ${floor.requestsPerSec.toFixed(0)} req/s, p50 ${floor.p50} ms, p99 ${floor.p99} ms`);
  return { health, floor };
}

export interface IngestResult extends HttpFigure {
  batchSize: number;
  eventsPerSec: number;
  seconds: number;
  /**
   * CPU per accepted event over the load, in µs: usage-ingest's process (validate, fingerprint, dedupe, produce) and
   * every PostgreSQL backend (its dedupe lookup and insert). Steadier than the rate, which two cores' neighbours move.
   */
  cpuPerEvent: { ingestMicros?: number; postgresMicros?: number };
  raw: RawHttp;
}

/** A usage-ingest process with its own schema, producing to `topic`. */
export async function startIngest(ctx: BenchRun, topic: string): Promise<{ ingest: ServiceProcess; schema: string }> {
  const schema = await ctx.createSchema('ingest');
  const ingest = await ctx.startService('usage-ingest', {
    DATABASE_URL: ctx.databaseUrl,
    DATABASE_SCHEMA: schema,
    KAFKA_BROKERS: ctx.brokers.join(','),
    USAGE_EVENTS_TOPIC: topic,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    API_KEYS: JSON.stringify([{ name: 'bench', sha256: hashApiKey(API_KEY), scopes: ['usage:write'] }]),
  });
  return { ingest, schema };
}

/**
 * POST /v1/usage-events at max rate for `seconds`: batches of `batchSize` fresh usage ids (nothing is a duplicate,
 * every event is produced), 10 connections. Returns autocannon's figure and the events usage-ingest accepted.
 */
export async function postUsageBatches(
  ctx: BenchRun, ingest: { ingest: ServiceProcess; schema: string }, accounts: string[], idPrefix: string, batchSize: number, seconds: number,
): Promise<{ result: AutocannonResult; accepted: number }> {
  let n = 0;
  const body = () => {
    const events = [];
    for (let i = 0; i < batchSize; i++, n++) events.push(usageRequestItem(`${idPrefix}-${ctx.id}-${n}`, accounts[n % accounts.length], n));
    return JSON.stringify({ events });
  };
  const result = await autocannon({
    url: `${ingest.ingest.base}/v1/usage-events`,
    method: 'POST',
    headers: authHeaders,
    connections: 10,
    duration: seconds,
    requests: [{ setupRequest: (request: object) => ({ ...request, body: body() }) }],
  });
  const { rows } = await ctx.pool.query(`select count(*)::int as n from "${ingest.schema}".accepted_usage`);
  return { result, accepted: rows[0].n as number };
}

export async function measureIngest(ctx: BenchRun, accounts: string[]): Promise<IngestResult> {
  // Its own usage topic, with no ledger consuming it: the figure is usage-ingest's (validate, dedupe in
  // PostgreSQL, produce with acks=all), not usage-ingest's share of two cores also running the ledger.
  const topic = ctx.topic('ingest.usage.events.v1');
  await ctx.createTopics([topic]);
  const started = await startIngest(ctx, topic);
  const { ingest } = started;
  const batchSize = 100;
  const seconds = knobs.seconds;
  log(`HTTP ingest: POST /v1/usage-events, ${batchSize} events per request, 10 connections, ${seconds} s`);
  const cpuBefore = { ingest: cpuSeconds(ingest.child.pid), postgres: cpuSecondsOfProcesses('postgres') };
  const { result, accepted } = await postUsageBatches(ctx, started, accounts, 'http', batchSize, seconds);
  const cpuPerEvent = {
    ingestMicros: cpuMicrosEach(accepted, cpuBefore.ingest, cpuSeconds(ingest.child.pid)),
    postgresMicros: cpuMicrosEach(accepted, cpuBefore.postgres, cpuSecondsOfProcesses('postgres')),
  };
  const f = figure(result);
  const eventsPerSec = accepted / result.duration;
  log(`  → ${f.requestsPerSec.toFixed(0)} req/s = ${eventsPerSec.toFixed(0)} events/s accepted; p50 ${f.p50} ms, p99 ${f.p99} ms, errors ${f.errors}; CPU per event: usage-ingest ${micros(cpuPerEvent.ingestMicros)} µs, PostgreSQL ${micros(cpuPerEvent.postgresMicros)} µs`);
  const raw = await rawHttpLimits(ingest, Math.max(2, knobs.seconds / 2));
  await ingest.kill();
  return { ...f, batchSize, eventsPerSec, seconds, cpuPerEvent, raw };
}

export interface AuthorizationResult {
  targetRate: number;
  achievedRate: number;
  accounts: number;
  seconds: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  errors: number;
  statusCodes: Record<string, number>;
  /** The same paced load on a request the API-key guard refuses (no I/O): this process's HTTP floor at that rate. */
  floorAtRate: { p50: number; p99: number; max: number };
  /**
   * CPU per authorization over the measured load, in µs: the ledger process's and every PostgreSQL backend's (the
   * cluster is shared: anything else it serves counts too). Steadier than the p99 from run to run, so a lever on the
   * request's path shows here first.
   */
  cpuPerRequest: { ledgerMicros?: number; postgresMicros?: number };
  /** The same paced load on a bare node:http server in its own process: the machine's HTTP floor at that rate. */
  bareAtRate: { p50: number; p99: number; max: number };
  /** The ledger's garbage collector during the measured load: each pause holds every request in flight. */
  gc?: GcPauses;
  /** The ledger's event loop delay during the measured load (prom-client's, sampled every 20 ms), in ms. */
  loopDelay?: { p99: number; max: number };
  raw: RawHttp;
}

/** POST /v1/accounts/:id/authorizations at a steady 1,000 requests/s (paced, open loop: see paced-load.harness.ts). */
export async function measureAuthorizations(stage: LedgerStage): Promise<AuthorizationResult> {
  const accounts = stage.accounts.slice(0, 100);
  const seconds = Math.round(knobs.seconds * 1.5);
  const targetRate = 1_000;
  const connections = 32;
  const body = JSON.stringify({ amount: '0.01' });
  log(`authorizations: POST /v1/accounts/:id/authorizations paced at ${targetRate} req/s, up to ${connections} in flight, ${accounts.length} accounts, ${seconds} s`);
  // A short warm-up (JIT, pools, the account cache) that is not counted.
  const requests = accounts.map((account) => ({ method: 'POST', path: `/v1/accounts/${account}/authorizations`, headers: authHeaders, body }));
  await pacedLoad({ base: stage.ledger.base, rate: targetRate, seconds: 2, connections, requests });
  // A scrape resets prom-client's event loop histogram: the one after the load reads the load alone. Both scrapes
  // fall outside the CPU readings, so the CPU per request is the requests' alone.
  const gcBefore = gcTotals(await scrapeMetrics(stage.ledger.base));
  const cpuBefore = { ledger: cpuSeconds(stage.ledger.child.pid), postgres: cpuSecondsOfProcesses('postgres') };
  const result = await pacedLoad({ base: stage.ledger.base, rate: targetRate, seconds, connections, requests });
  const cpuPerRequest = {
    ledgerMicros: cpuMicrosEach(result.sent, cpuBefore.ledger, cpuSeconds(stage.ledger.child.pid)),
    postgresMicros: cpuMicrosEach(result.sent, cpuBefore.postgres, cpuSecondsOfProcesses('postgres')),
  };
  const afterLoad = await scrapeMetrics(stage.ledger.base);
  const gc = gcPauses(gcBefore, gcTotals(afterLoad));
  const lag = (name: string) => sumOf(afterLoad?.samples ?? [], name) * 1000;
  const loopDelay = afterLoad ? { p99: lag('nodejs_eventloop_lag_p99_seconds'), max: lag('nodejs_eventloop_lag_max_seconds') } : undefined;
  const errors = result.errors + Object.entries(result.statusCodes).filter(([code]) => code !== '200').reduce((n, [, count]) => n + count, 0);
  log(`  → ${result.achievedRate.toFixed(0)} req/s; p50 ${ms(result.p50)} ms, p95 ${ms(result.p95)} ms, p99 ${ms(result.p99)} ms, max ${ms(result.max)} ms; errors ${errors} (${JSON.stringify(result.statusCodes)}); CPU per request: ledger ${micros(cpuPerRequest.ledgerMicros)} µs, PostgreSQL ${micros(cpuPerRequest.postgresMicros)} µs; ledger GC ${gcText(gc)}, event loop delay ${loopText(loopDelay)}`);
  const floor = await pacedLoad({ base: stage.ledger.base, rate: targetRate, seconds: Math.max(3, seconds / 3), connections, requests: [{ method: 'GET', path: '/v1/accounts/raw-limit/balance' }] });
  log(`  floor: a 401 from the API-key guard, same pace: p50 ${ms(floor.p50)} ms, p99 ${ms(floor.p99)} ms, max ${ms(floor.max)} ms`);
  const bare = await bareServerAtRate(targetRate, Math.max(3, seconds / 3), connections);
  log(`  floor: a bare node:http server in its own process, same pace: p50 ${ms(bare.p50)} ms, p99 ${ms(bare.p99)} ms, max ${ms(bare.max)} ms`);
  const raw = await rawHttpLimits(stage.ledger, Math.max(2, knobs.seconds / 2));
  return {
    targetRate, achievedRate: result.achievedRate, accounts: accounts.length, seconds, p50: result.p50, p95: result.p95, p99: result.p99, max: result.max, errors,
    statusCodes: result.statusCodes, cpuPerRequest, floorAtRate: { p50: floor.p50, p99: floor.p99, max: floor.max }, bareAtRate: { p50: bare.p50, p99: bare.p99, max: bare.max }, gc, loopDelay, raw,
  };
}

/**
 * A server with nothing of Tally's in it: node:http answering every request with a 401 and a short JSON body, in a
 * process of its own as a service runs. The same paced load against it measures what the generator, the loopback and
 * the two cores' scheduler add to any request at that rate: the machine's floor, under the ledger's own 401.
 */
const BARE_SERVER = `
  const server = require('node:http').createServer((req, res) => {
    req.resume();
    req.on('end', () => { res.writeHead(401, { 'content-type': 'application/json' }); res.end('{"code":"UNAUTHORIZED"}'); });
  });
  server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

async function bareServerAtRate(rate: number, seconds: number, connections: number) {
  const server = spawn(process.execPath, ['-e', BARE_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<string>((resolve, reject) => {
      server.stdout.once('data', (line: Buffer) => resolve(line.toString().trim()));
      server.once('exit', (code) => reject(new Error(`the bare server exited (${code}) before it listened`)));
    });
    const base = `http://127.0.0.1:${port}`;
    const requests = [{ method: 'GET', path: '/v1/accounts/raw-limit/balance' }];
    await pacedLoad({ base, rate, seconds: 2, connections, requests }); // its JIT and sockets, not counted
    return await pacedLoad({ base, rate, seconds, connections, requests });
  } finally {
    server.kill();
  }
}

const ms = (value: number) => value.toFixed(1);
/** "p99 21 ms, max 48 ms" (delays under prom-client's 20 ms sampling read as about 20), or "?". */
export const loopText = (delay: { p99: number; max: number } | undefined): string => (delay ? `p99 ${delay.p99.toFixed(0)} ms, max ${delay.max.toFixed(0)} ms` : '?');
/** µs as a whole number, or '?' where it was not measured. */
export const micros = (value: number | undefined) => (value === undefined ? '?' : value.toFixed(0));

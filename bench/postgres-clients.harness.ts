/**
 * PostgreSQL's CPU by client: each backend's CPU (from /proc) grouped by its session's `application_name`, so a phase
 * can say whose statements PostgreSQL's share of a usage went to. The services name their sessions
 * (`tally-ledger:commands,relay`, `tally-ledger:projection`, `tally-usage-ingest`; the bench's pool `tally-bench`).
 * Session 36 could not place ~100 µs of PostgreSQL's CPU per HTTP-reported usage from its statements' times; read this
 * way, it was usage-ingest's own backends and the ledger's batches being smaller on that path (docs/benchmarks.md,
 * session 37).
 */
import type { Pool } from 'pg';
import { cpuMicrosEach, cpuSeconds } from './bench.harness';

/** One reading: the CPU seconds so far of each live backend of the bench's database, by pid, with its client's name. */
export type BackendCpu = Map<number, { client: string; seconds: number }>;

export async function readBackendCpu(pool: Pool): Promise<BackendCpu> {
  const { rows } = await pool.query<{ pid: number; client: string }>(
    `select pid, coalesce(nullif(application_name, ''), backend_type) as client from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid()`,
  );
  const reading: BackendCpu = new Map();
  for (const { pid, client } of rows) {
    const seconds = cpuSeconds(pid);
    if (seconds !== undefined) reading.set(pid, { client: client.replace(/^tally-/, ''), seconds });
  }
  return reading;
}

/**
 * CPU seconds by client from the first reading to each backend's last one (take a reading before stopping a service:
 * its backends end with it). A backend first seen after the first reading started in between, so all of its CPU
 * counts; one that ended before any later reading counts only up to its last. What no reading saw (backends opened
 * and closed in between, the server's own processes, the session that reads) is the difference to the cluster's total:
 * `other` in the rows.
 */
export function cpuByClient(readings: BackendCpu[]): Map<string, number> {
  const [first] = readings;
  const latest: BackendCpu = new Map();
  for (const reading of readings) for (const [pid, backend] of reading) latest.set(pid, backend);
  const byClient = new Map<string, number>();
  for (const [pid, { client, seconds }] of latest) byClient.set(client, (byClient.get(client) ?? 0) + seconds - (first?.get(pid)?.seconds ?? 0));
  return byClient;
}

/**
 * Each client's share in µs for each of `count` things done, largest first, and `other`: the cluster's CPU between
 * `totalBefore` and `totalAfter` (two readings of `cpuSecondsOfProcesses('postgres')` over the same time) less what was
 * placed.
 */
export function clientMicros(byClient: Map<string, number>, count: number, totalBefore: number | undefined, totalAfter: number | undefined): Record<string, number> {
  const shares: [string, number][] = [...byClient].filter(([, seconds]) => seconds > 0).sort((a, b) => b[1] - a[1]).map(([client, seconds]) => [client, cpuMicrosEach(count, 0, seconds) ?? 0]);
  const total = cpuMicrosEach(count, totalBefore, totalAfter);
  if (total !== undefined) shares.push(['other', Math.max(0, total - shares.reduce((sum, [, micros]) => sum + micros, 0))]);
  return Object.fromEntries(shares);
}

/** "ledger:commands,relay 61, ledger:projection 25, other 9" (µs). */
export const clientsText = (micros: Record<string, number> | undefined): string =>
  micros ? Object.entries(micros).map(([client, value]) => `${client} ${value.toFixed(0)}`).join(', ') : '?';

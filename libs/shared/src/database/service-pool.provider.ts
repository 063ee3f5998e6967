import { Pool, defaults } from 'pg';
import type { DataSource } from 'typeorm';
import { surviveConnectionLoss, type ConnectionLossLog } from './pg-connection-loss.provider';

/**
 * Settings every service connection starts its session with (libpq `options`; an `options` parameter in
 * DATABASE_URL replaces them). JIT off: the services run short OLTP statements, but PostgreSQL's estimates for the
 * set-based ones (a batch's unnest, a table not analyzed yet after a burst of new accounts) pass jit_above_cost,
 * and it then compiles them at every execution, which costs far more CPU than running them (loading 20,000 cold
 * accounts: 49-88 us each with JIT, 37-43 us without).
 *
 * A session whose client went silent must not hold its locks for ever (a consumer's offset rows, a stream's row: the
 * next owner would wait behind it): a transaction left idle for 5 minutes is ended by the server
 * (`idle_in_transaction_session_timeout`; longer than any wait on Kafka inside a transaction: subscription-cycle's
 * outbox sends and a consumer's dead letters are acknowledged before their COMMIT, and kafkajs's retries through a
 * broker restart take up to ~4 minutes), and a
 * statement whose client has gone (its socket closed, e.g. by the query timeout below) is cancelled within 5 s
 * instead of running, or waiting for a lock, to its end (`client_connection_check_interval`, PostgreSQL 14+).
 */
export const PG_SESSION_OPTIONS = '-c jit=off -c idle_in_transaction_session_timeout=300000 -c client_connection_check_interval=5000';

/** What a service's pools give up on (PG_QUERY_TIMEOUT_MS, PG_CONNECT_TIMEOUT_MS; 0: never). */
export interface PoolLimits {
  /** A statement PostgreSQL has not answered (pg's client-side `query_timeout`). */
  queryTimeoutMs: number;
  /** A connection not had: every one busy, or a new one not opened (pg-pool's `connectionTimeoutMillis`). */
  connectTimeoutMs: number;
}

/**
 * The session parameters of every connection a service opens (pg's Pool and Client options, TypeORM's `extra`): the
 * settings above, and `application_name` tally-<name>, so that `pg_stat_activity` says whose a session is: which
 * service holds the database's oldest open transaction (the relay's gap-safe tail waits for it), a lock, or a connection slot.
 * With `limits`, pg's client-side `query_timeout` and pg-pool's `connectionTimeoutMillis` too (see createServicePool):
 * a service's own pools, TypeORM's included. Not the migrations: each service runs them through migrateTakingTurns on
 * a session without them.
 */
export function serviceSession(
  name: string,
  limits?: PoolLimits,
): { options: string; application_name: string; query_timeout?: number; connectionTimeoutMillis?: number } {
  return {
    options: PG_SESSION_OPTIONS,
    application_name: `tally-${name}`,
    ...(limits && limits.queryTimeoutMs > 0 && { query_timeout: limits.queryTimeoutMs }),
    ...(limits && limits.connectTimeoutMs > 0 && { connectionTimeoutMillis: limits.connectTimeoutMs }),
  };
}

/**
 * Instants go to PostgreSQL as UTC text. pg's default writes a Date in the process's local time with its offset in
 * whole minutes, and for dates before time zones were standardised (Berlin before 1893: +00:53:28) that drops the
 * seconds: a range `from=1850-01-01` meant 28 s later in a process running in Berlin (the services' images run in UTC,
 * where nothing changes). One setting of the process's pg module (TypeORM's pools share it), made when a service
 * first loads @tally/shared.
 */
defaults.parseInputDatesAsUTC = true;

/**
 * A service's pg Pool: session settings applied, surviving PostgreSQL restarts (surviveConnectionLoss), and giving up
 * on a statement PostgreSQL has not answered in `queryTimeoutMs` (PG_QUERY_TIMEOUT_MS; 0: never). A server that
 * froze, or a network path that died without a reset, otherwise leaves the caller waiting for ever (TCP only notices
 * after minutes of retransmissions, and not at all while the far kernel still acknowledges): a consumer's partition
 * stops with nothing failing. The timed-out statement's error reaches the caller, whose ROLLBACK times out in turn
 * and makes it destroy the connection (pg's `release(error)`); the caller retries on a new one.
 *
 * Nor does a caller wait for ever for a connection (`connectTimeoutMs`, PG_CONNECT_TIMEOUT_MS): with every one busy
 * (a slow database under load), pg-pool's queue of waiters is unbounded, and an HTTP request waited in it unanswered
 * while its client gave up and sent it again, each one more waiter; it is answered 503 with Retry-After instead.
 */
export function createServicePool(connectionString: string, max: number, log: ConnectionLossLog, name: string, limits: PoolLimits): Pool {
  const pool = surviveConnectionLoss(new Pool({ connectionString, max, ...serviceSession(name, limits) }), log, name);
  watchReleases(pool);
  return pool;
}

/** When a connection last came back to each watched pool whole (its statements done without a connection error). */
const lastGoodRelease = new WeakMap<Pool, number>();

/**
 * The `postgres` readiness check of a service's pool: PostgreSQL answers a `select 1`, unless every connection of the
 * pool is checked out and one came back whole within `busyForMs` (PG_CONNECT_TIMEOUT_MS's default). Busy is not
 * down: queued behind the requests, the check failed (PG_CONNECT_TIMEOUT_MS, or the probe's own timeout) on every
 * replica of a loaded service at once, which took them all out of the Service, and its clients got connection errors
 * instead of 503s with Retry-After. A pool full of connections that do not come back (a frozen server, a lost network
 * path: slots held by statements or by connections still being opened) is asked, and fails.
 */
export async function postgresReady(pool: Pool, busyForMs = 10_000): Promise<void> {
  watchReleases(pool);
  const full = pool.idleCount === 0 && pool.totalCount >= (pool.options.max ?? Number.POSITIVE_INFINITY);
  if (full && Date.now() - (lastGoodRelease.get(pool) as number) < busyForMs) return;
  await pool.query('select 1');
}

/** postgresReady for a TypeORM data source (initialized): its driver's pg Pool, watched from now on. */
export function postgresReadyOf(dataSource: DataSource): () => Promise<void> {
  const pool = (dataSource.driver as unknown as { master: Pool }).master;
  watchReleases(pool);
  return () => postgresReady(pool);
}

/** Records, from now on, when a connection comes back to `pool` whole (postgresReady). */
function watchReleases(pool: Pool): void {
  if (lastGoodRelease.has(pool)) return;
  lastGoodRelease.set(pool, Number.NEGATIVE_INFINITY);
  pool.on('release', (error: Error | undefined) => {
    if (!error) lastGoodRelease.set(pool, Date.now());
  });
}

import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { backoffDelayMs } from '../time/backoff.schedule';
import { serviceSession } from './service-pool.provider';

/** How often a replica waiting its turn asks for the lock again, on average (jittered half to one and a half times). */
const TURN_POLL_MS = 500;
/** How long the lock's session may stay idle before PostgreSQL ends it (and the lock with it); probed every third of it. */
const LOCK_IDLE_TIMEOUT_MS = 30_000;
/**
 * How long a migration's statement waits for a table lock before it gives up (and its migration is tried again): an
 * ALTER TABLE queued for a lock holds every later statement on that table behind it, the running version's writes
 * included, for as long as it waits.
 */
export const MIGRATION_LOCK_TIMEOUT_MS = 500;
/** After a migration gave up waiting for a lock: tried again after 1 s, doubling to 15 s, jittered. */
const LOCK_RETRY_MS = { first: 1_000, most: 15_000 };
/** PostgreSQL's lock_not_available: a statement's lock_timeout ran out. */
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Creates `schema` if needed and applies the data source's pending migrations, one transaction each (a migration
 * with `transaction = false`, such as a CREATE INDEX CONCURRENTLY, runs outside any). Replicas booting together take
 * turns: a session advisory lock keyed by the service and schema is held, on a connection of its own, while one
 * migrates. `dataSource` must be built without a statement timeout: an index built on a large table takes what it
 * takes, and a client-side timeout would fail the boot while the server goes on building.
 *
 * A replica waits its turn by asking for the lock again every TURN_POLL_MS, not by a `pg_advisory_lock` that blocks: a
 * blocked statement holds a snapshot, a CREATE INDEX CONCURRENTLY of the replica migrating waits for every older
 * snapshot to end, and PostgreSQL sees no deadlock (the lock's holder is an idle session), so both replicas waited for
 * ever.
 *
 * The lock lives as long as PostgreSQL keeps its session. A replica whose host is lost (or whose process freezes)
 * mid-migration closes nothing, and PostgreSQL would keep the session, and the lock, until TCP keepalive gives up,
 * hours later, while every replica started meanwhile waits its turn. So the lock's session carries
 * `idle_session_timeout` (`lockIdleTimeoutMs`, 30 s by default), which the replica migrating keeps from running out by
 * probing it every third of that time (as the relay's leader does): a replica that stops answering gives the turn
 * away; its migration's own transaction ends with its session (idle_in_transaction_session_timeout, or the statement).
 */
export async function migrateTakingTurns(options: { url: string; service: string; schema: string; dataSource: () => DataSource; lockIdleTimeoutMs?: number }): Promise<void> {
  const idleTimeoutMs = options.lockIdleTimeoutMs ?? LOCK_IDLE_TIMEOUT_MS;
  const lock = new Client({ connectionString: options.url, ...serviceSession(`${options.service}-migrations`) });
  // A connection lost while it idles holding the lock fails the unlock below, not the process.
  lock.on('error', () => undefined);
  await lock.connect();
  const key = [`tally-${options.service}-migrations`, options.schema];
  let probe: NodeJS.Timeout | undefined;
  try {
    await lock.query(`set idle_session_timeout = ${Math.trunc(idleTimeoutMs)}`);
    for (;;) {
      const { rows } = await lock.query<{ locked: boolean }>(`select pg_try_advisory_lock(hashtext($1), hashtext($2)) as locked`, key);
      if (rows[0].locked) break;
      await sleep(TURN_POLL_MS * (0.5 + Math.random()));
    }
    // A failed probe (the session ended) is the unlock's to report: the migrations go on, the turn may be another's.
    probe = setInterval(() => void lock.query('select 1').catch(() => undefined), idleTimeoutMs / 3);
    const db = await options.dataSource().initialize();
    try {
      await db.query(`create schema if not exists "${options.schema}"`);
      for (let attempt = 1; ; attempt++) {
        try {
          await db.runMigrations({ transaction: 'each' });
          break;
        } catch (error) {
          // The migration that gave up rolled back alone (one transaction each); those before it stay applied.
          if (!isLockNotAvailable(error)) throw error;
          await sleep(backoffDelayMs(LOCK_RETRY_MS.first, LOCK_RETRY_MS.most, attempt));
        }
      }
    } finally {
      await db.destroy();
    }
  } finally {
    clearInterval(probe);
    await lock.query(`select pg_advisory_unlock(hashtext($1), hashtext($2))`, key).catch(() => undefined);
    await lock.end().catch(() => undefined);
  }
}

/**
 * The session of a service's migrations (see migrateServiceTakingTurns): named `<service>-migrations`, no statement
 * timeout, and a lock wait of MIGRATION_LOCK_TIMEOUT_MS at most (migrateTakingTurns tries a migration that gave up
 * again). createIndexConcurrently lifts it for its build, which takes only a lock writes do not wait for.
 */
export function migrationSession(service: string): ReturnType<typeof serviceSession> {
  const session = serviceSession(`${service}-migrations`);
  return { ...session, options: `${session.options} -c lock_timeout=${MIGRATION_LOCK_TIMEOUT_MS}` };
}

function isLockNotAvailable(error: unknown): boolean {
  const { code, driverError } = (error ?? {}) as { code?: unknown; driverError?: { code?: unknown } };
  return code === LOCK_NOT_AVAILABLE || driverError?.code === LOCK_NOT_AVAILABLE;
}

/**
 * migrateTakingTurns over a service's own TypeORM options (its entities, migrations and migrations table), on one
 * connection of its own named `<service>-migrations` and without the service's query timeout (PG_QUERY_TIMEOUT_MS):
 * an index built on a large table, or a lock waited for while the older version's replicas still run, takes what it
 * takes instead of failing the boot.
 */
export function migrateServiceTakingTurns(service: string, database: { DATABASE_URL: string; DATABASE_SCHEMA: string }, options: DataSourceOptions): Promise<void> {
  return migrateTakingTurns({
    url: database.DATABASE_URL,
    service,
    schema: database.DATABASE_SCHEMA,
    dataSource: () => new DataSource({ ...options, extra: { max: 1, ...migrationSession(service) } } as DataSourceOptions),
  });
}

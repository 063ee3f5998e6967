import type { Pool, PoolClient } from 'pg';

/** Where a lost connection is reported (a pino logger fits). */
export interface ConnectionLossLog {
  warn: (fields: Record<string, unknown>, message: string) => void;
}

/**
 * Makes a pg Pool survive PostgreSQL restarts. When the server goes away (a restart's "terminating connection due
 * to administrator command", a crash, a network cut) every connection emits 'error'; an 'error' event nobody
 * listens to throws and ends the process. The pool forwards an idle client's error to its own 'error' event, and
 * a checked-out client emits it itself whenever no query of its own is running (between the statements of a
 * transaction, or while it holds a LISTEN or an advisory lock). Both are logged here; the broken client is no
 * longer queryable, so its next query fails (the caller's retry or 503 handles that) and the pool discards it
 * on release. Owners of long-lived clients still add their own listener to notice the loss (see the relay).
 */
export function surviveConnectionLoss(pool: Pool, log: ConnectionLossLog, name = 'pg'): Pool {
  pool.on('error', (error: Error) => log.warn({ pool: name, err: error.message }, 'idle PostgreSQL connection lost; the pool will open a new one'));
  pool.on('connect', (client: PoolClient) => {
    client.on('error', (error: Error) => log.warn({ pool: name, err: error.message }, 'PostgreSQL connection lost while checked out'));
  });
  return pool;
}

import { Pool } from 'pg';
import { surviveConnectionLoss, type ConnectionLossLog } from './pg-connection-loss.provider';

/**
 * Settings every service connection starts its session with (libpq `options`; an `options` parameter in
 * DATABASE_URL replaces them). JIT off: the services run short OLTP statements, but PostgreSQL's estimates for the
 * set-based ones (a batch's unnest, a table not analyzed yet after a burst of new accounts) pass jit_above_cost,
 * and it then compiles them at every execution, which costs far more CPU than running them (loading 20,000 cold
 * accounts: 49-88 us each with JIT, 37-43 us without).
 */
export const PG_SESSION_OPTIONS = '-c jit=off';

/**
 * The session parameters of every connection a service opens (pg's Pool and Client options, TypeORM's `extra`): the
 * settings above, and `application_name` tally-<name>, so that `pg_stat_activity` says whose a session is: which
 * service holds the oldest open transaction (the relay's gap-safe tail waits for it), a lock, or a connection slot.
 */
export function serviceSession(name: string): { options: string; application_name: string } {
  return { options: PG_SESSION_OPTIONS, application_name: `tally-${name}` };
}

/** A service's pg Pool: session settings applied, and surviving PostgreSQL restarts (surviveConnectionLoss). */
export function createServicePool(connectionString: string, max: number, log: ConnectionLossLog, name: string): Pool {
  return surviveConnectionLoss(new Pool({ connectionString, max, ...serviceSession(name) }), log, name);
}

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

/** A service's pg Pool: session settings applied, and surviving PostgreSQL restarts (surviveConnectionLoss). */
export function createServicePool(connectionString: string, max: number, log: ConnectionLossLog, name: string): Pool {
  return surviveConnectionLoss(new Pool({ connectionString, max, options: PG_SESSION_OPTIONS, application_name: `tally-${name}` }), log, name);
}

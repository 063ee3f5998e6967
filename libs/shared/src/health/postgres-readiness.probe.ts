import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';

/**
 * The `postgres` readiness check of a service's pool: PostgreSQL answers a `select 1`, unless every connection of the
 * pool is checked out. Busy is not down: queued behind the requests, the check failed (PG_CONNECT_TIMEOUT_MS, or the
 * probe's own timeout) on every replica of a loaded service at once, which took them all out of the Service, and its
 * clients got connection errors instead of 503s with Retry-After. Connections at work show PostgreSQL reachable; a
 * frozen server fails them within PG_QUERY_TIMEOUT_MS, and a later probe then finds a free slot and asks.
 */
export async function postgresReady(pool: Pool): Promise<void> {
  if (pool.idleCount === 0 && pool.totalCount >= (pool.options.max ?? Number.POSITIVE_INFINITY)) return;
  await pool.query('select 1');
}

/** postgresReady for a TypeORM data source: its driver's pg Pool. */
export function postgresReadyOf(dataSource: DataSource): () => Promise<void> {
  return () => postgresReady((dataSource.driver as unknown as { master: Pool }).master);
}

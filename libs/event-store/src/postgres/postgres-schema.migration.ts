import type { Pool, PoolClient } from 'pg';
import { isSqlIdentifier } from '@tally/shared';
import { EventStoreError, EventStoreErrorCode } from '../event-store.errors';

export const DEFAULT_EVENT_STORE_SCHEMA = 'event_store';

// Schema names are interpolated into SQL (identifiers cannot be bound parameters): accept plain identifiers only.
export function assertSchemaName(schema: string): void {
  if (!isSqlIdentifier(schema)) {
    throw new EventStoreError(EventStoreErrorCode.INVALID_REQUEST, 'schema must match ^[a-z_][a-z0-9_]{0,62}$', {
      schema,
    });
  }
}

/** The LISTEN/NOTIFY channel appenders notify so tailing subscribers wake before their next poll. */
export function notifyChannel(schema: string): string {
  return `${schema}_events`;
}

/**
 * The DDL, idempotent so that the TypeORM migration and ensureSchema() share it.
 * - streams: one row per stream holding its version; locking that row serialises writers of a stream
 *   (optimistic concurrency without scanning events).
 * - events: global_position is assigned at INSERT but becomes visible at COMMIT, so readers order by
 *   (transaction_id, global_position) and only read transactions older than every running one
 *   (see PostgresEventStore.readAll); the index below serves exactly that query.
 */
export function eventStoreUpSql(schema: string): string[] {
  assertSchemaName(schema);
  return [
    `CREATE SCHEMA IF NOT EXISTS "${schema}"`,
    `CREATE TABLE IF NOT EXISTS "${schema}".streams (
      stream_id text PRIMARY KEY,
      version integer NOT NULL CHECK (version >= 0)
    )`,
    `CREATE TABLE IF NOT EXISTS "${schema}".events (
      global_position bigserial NOT NULL,
      transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
      stream_id text NOT NULL,
      version integer NOT NULL CHECK (version >= 1),
      event_id uuid NOT NULL,
      type text NOT NULL,
      data jsonb NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
      recorded_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT events_pkey PRIMARY KEY (stream_id, version),
      CONSTRAINT events_event_id_key UNIQUE (event_id)
    )`,
    `CREATE INDEX IF NOT EXISTS events_transaction_position_idx
      ON "${schema}".events (transaction_id, global_position)`,
  ];
}

/**
 * The second step: `streams.last_xid`, the transaction that last moved the stream. readAll orders events by
 * transaction id, and a transaction takes its id at its first write, which may come before it reads the stream (a
 * consumer locks its offsets first). An append in a transaction older than the stream's last writer would follow a
 * version that readAll delivers after it, so it is refused (PostgresEventStore.appendInTransaction) and retried in a
 * new transaction. Rows written before this column read 0: older than any transaction.
 */
export function streamsLastWriterUpSql(schema: string): string[] {
  assertSchemaName(schema);
  return [`ALTER TABLE "${schema}".streams ADD COLUMN IF NOT EXISTS last_xid xid8 NOT NULL DEFAULT '0'`];
}

export function streamsLastWriterDownSql(schema: string): string[] {
  assertSchemaName(schema);
  return [`ALTER TABLE "${schema}".streams DROP COLUMN IF EXISTS last_xid`];
}

/** Drops the tables, not the schema: it may hold other objects (e.g. TypeORM's migrations table). */
export function eventStoreDownSql(schema: string): string[] {
  assertSchemaName(schema);
  return [`DROP TABLE IF EXISTS "${schema}".events`, `DROP TABLE IF EXISTS "${schema}".streams`];
}

/**
 * Creates the event store tables if missing, for tests and tools; apps run the TypeORM migration instead.
 * Serialised with an advisory lock because concurrent CREATE ... IF NOT EXISTS can still race on the catalog.
 */
export async function ensureSchema(pool: Pool | PoolClient, schema: string = DEFAULT_EVENT_STORE_SCHEMA): Promise<void> {
  const statements = [...eventStoreUpSql(schema), ...streamsLastWriterUpSql(schema)];
  const client = 'release' in pool ? pool : await pool.connect();
  const owned = client !== pool;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tally.event-store.schema.${schema}`]);
    for (const sql of statements) await client.query(sql);
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    if (owned) (client as PoolClient).release();
  }
}

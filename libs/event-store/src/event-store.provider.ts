import type { Pool } from 'pg';
import type { EventStore } from './event-store.port';
import { PostgresEventStore, type PostgresEventStoreOptions } from './postgres/postgres-event-store.adapter';
import type * as EventStoreDbAdapter from './eventstoredb/eventstoredb-event-store.adapter';

export type EventStoreConfig =
  | ({ kind: 'postgres'; pool: Pool; schema: string } & Omit<PostgresEventStoreOptions, 'pool' | 'schema'>)
  | { kind: 'eventstoredb'; connectionString: string };

/** Picks the adapter from configuration. PostgreSQL does not create its tables: run the migration first. */
export function createEventStore(config: EventStoreConfig): EventStore {
  switch (config.kind) {
    case 'postgres': {
      const { kind: _kind, ...options } = config;
      return new PostgresEventStore(options);
    }
    case 'eventstoredb': {
      // Loaded only when chosen: the EventStoreDB client and its gRPC stack are ~5 MB of live heap that a ledger on
      // PostgreSQL never uses, and V8 lets the old space grow to 3× what is live before a full collection
      // (`--heap-growing-percent=200`), so up to ~15 MB of its peak RSS (docs/benchmarks.md, session 34).
      const { EventStoreDbEventStore } = require('./eventstoredb/eventstoredb-event-store.adapter') as typeof EventStoreDbAdapter;
      return EventStoreDbEventStore.fromConnectionString(config.connectionString);
    }
    default: {
      const unknown: never = config;
      throw new Error(`unknown event store kind: ${JSON.stringify(unknown)}`);
    }
  }
}

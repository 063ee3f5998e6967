import type { Pool } from 'pg';
import type { EventStore } from './event-store.port';
import { PostgresEventStore, type PostgresEventStoreOptions } from './postgres/postgres-event-store.adapter';
import { EventStoreDbEventStore } from './eventstoredb/eventstoredb-event-store.adapter';

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
    case 'eventstoredb':
      return EventStoreDbEventStore.fromConnectionString(config.connectionString);
    default: {
      const unknown: never = config;
      throw new Error(`unknown event store kind: ${JSON.stringify(unknown)}`);
    }
  }
}

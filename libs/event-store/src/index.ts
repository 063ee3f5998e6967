export * from './event-store.port';
export * from './event-store.errors';
export { createEventStore, type EventStoreConfig } from './event-store.provider';
export { PostgresEventStore, type PostgresEventStoreOptions } from './postgres/postgres-event-store.adapter';
export { encodePgCheckpoint, type PgPosition } from './postgres/postgres-checkpoint.codec';
export {
  DEFAULT_EVENT_STORE_SCHEMA,
  ensureSchema,
  eventStoreDownSql,
  eventStoreUpSql,
  streamsLastWriterDownSql,
  streamsLastWriterUpSql,
} from './postgres/postgres-schema.migration';
export {
  CreateEventStore1763700000000,
  createEventStoreMigration,
} from './postgres/migrations/1763700000000-create-event-store';
export { createStreamsLastWriterMigration } from './postgres/migrations/1765900000000-streams-last-writer';
// A type only: the adapter (and the EventStoreDB client under it) is loaded by createEventStore when chosen.
export type { EventStoreDbEventStore } from './eventstoredb/eventstoredb-event-store.adapter';
export type { PollingOptions } from './polling-subscription.worker';
// The contract suite (Jest globals) is test code: '@tally/event-store/testing', never this production barrel.

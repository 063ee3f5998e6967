export * from './event-store.port';
export * from './event-store.error';
export { createEventStore, type EventStoreConfig } from './create-event-store';
export { PostgresEventStore, type PostgresEventStoreOptions } from './postgres/postgres-event-store';
export {
  DEFAULT_EVENT_STORE_SCHEMA,
  ensureSchema,
  eventStoreDownSql,
  eventStoreUpSql,
} from './postgres/postgres-schema';
export {
  CreateEventStore1763700000000,
  createEventStoreMigration,
} from './postgres/migrations/1763700000000-create-event-store';
export { EventStoreDbEventStore } from './eventstoredb/eventstoredb-event-store';
export type { PollingOptions } from './polling-subscription';
// The contract suite (Jest globals) is test code: '@tally/event-store/testing', never this production barrel.

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
// The contract suite uses Jest globals: import it from test code only ('@tally/event-store/testing' has no path
// alias yet, so it is re-exported here; it registers nothing until describeEventStoreContract is called).
export { describeEventStoreContract, type EventStoreContractFactory, type OpenTransaction } from './testing';

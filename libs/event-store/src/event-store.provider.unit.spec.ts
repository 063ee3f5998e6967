import { moduleLoads } from '@tally/testing';
import { Pool } from 'pg';
import type * as EventStoreLib from './index';

/**
 * The EventStoreDB client (and its gRPC stack, ~5 MB of live heap) is loaded only by a ledger that chose it: a
 * ledger on PostgreSQL, which imports this library's barrel, never loads it.
 */
describe('createEventStore', () => {
  const library = () => require('./index') as typeof EventStoreLib;

  it('given the PostgreSQL store, when the library is imported and the store created, then the EventStoreDB client is not loaded', async () => {
    const pool = new Pool({ max: 1 });
    const loads = moduleLoads('@eventstore/db-client', () => {
      const { createEventStore, PostgresEventStore } = library();
      expect(createEventStore({ kind: 'postgres', pool, schema: 'unused' })).toBeInstanceOf(PostgresEventStore);
    });
    expect(loads).toBe(0);
    await pool.end();
  });

  it('given EventStoreDB, when the store is created, then the client is loaded and the adapter built on it', async () => {
    let store: EventStoreLib.EventStore | undefined;
    const loads = moduleLoads('@eventstore/db-client', () => {
      store = library().createEventStore({ kind: 'eventstoredb', connectionString: 'esdb://127.0.0.1:1?tls=false' });
    });
    expect(loads).toBe(1);
    expect(store?.constructor.name).toBe('EventStoreDbEventStore');
    await store?.close();
  });
});

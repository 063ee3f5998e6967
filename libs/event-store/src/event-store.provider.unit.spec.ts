import { Pool } from 'pg';
import type * as EventStoreLib from './index';

/**
 * The EventStoreDB client (and its gRPC stack, ~5 MB of live heap) is loaded only by a ledger that chose it: a
 * ledger on PostgreSQL, which imports this library's barrel, never loads it. The client module is observed through
 * jest.doMock with the real module behind it, so the test sees each time something requires it.
 */
describe('createEventStore', () => {
  function withObservedClient(run: (lib: typeof EventStoreLib) => void): { clientLoads: () => number } {
    let loads = 0;
    jest.isolateModules(() => {
      jest.doMock('@eventstore/db-client', () => {
        loads += 1;
        return jest.requireActual('@eventstore/db-client');
      });
      run(require('./index') as typeof EventStoreLib);
    });
    return { clientLoads: () => loads };
  }

  it('given the PostgreSQL store, when the library is imported and the store created, then the EventStoreDB client is not loaded', async () => {
    const pool = new Pool({ max: 1 });
    const observed = withObservedClient(({ createEventStore, PostgresEventStore }) => {
      expect(createEventStore({ kind: 'postgres', pool, schema: 'unused' })).toBeInstanceOf(PostgresEventStore);
    });
    expect(observed.clientLoads()).toBe(0);
    await pool.end();
  });

  it('given EventStoreDB, when the store is created, then the client is loaded and the adapter built on it', async () => {
    let store: EventStoreLib.EventStore | undefined;
    const observed = withObservedClient(({ createEventStore }) => {
      store = createEventStore({ kind: 'eventstoredb', connectionString: 'esdb://127.0.0.1:1?tls=false' });
    });
    expect(observed.clientLoads()).toBe(1);
    expect(store?.constructor.name).toBe('EventStoreDbEventStore');
    await store?.close();
  });
});

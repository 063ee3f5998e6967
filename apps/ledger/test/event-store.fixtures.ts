import { Pool } from 'pg';
import { PostgresEventStore, ensureSchema } from '@tally/event-store';
import { createTestSchema, testDatabaseUrl } from '@tally/testing';

/**
 * The event store on a fresh schema of the real PostgreSQL for one describe block: created before its tests, closed
 * and dropped after them. Its fields are read inside the tests (they exist once beforeAll ran).
 */
export function eventStoreOnFreshSchema(prefix: string, poolSize = 4): { readonly schema: string; readonly pool: Pool; readonly store: PostgresEventStore } {
  let schema: Awaited<ReturnType<typeof createTestSchema>> | undefined;
  let pool: Pool | undefined;
  let store: PostgresEventStore | undefined;
  beforeAll(async () => {
    schema = await createTestSchema(prefix);
    pool = new Pool({ connectionString: testDatabaseUrl(), max: poolSize });
    await ensureSchema(pool, schema.schema);
    store = new PostgresEventStore({ pool, schema: schema.schema, listen: false });
  });
  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await schema?.drop();
  });
  const set = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the event store's ${what} is used before beforeAll ran`);
    return value;
  };
  return {
    get schema() {
      return set(schema, 'schema').schema;
    },
    get pool() {
      return set(pool, 'pool');
    },
    get store() {
      return set(store, 'store');
    },
  };
}

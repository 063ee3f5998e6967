import { Client, Pool } from 'pg';
import { endPool, testDatabaseUrl, uniqueSuffix } from '../src/testing/index';

/**
 * A test that ends its pool and then drops its database (`WITH (FORCE)`) must not find a session of that pool still
 * open: the server would end it with 57P01 and the pool would throw that into the next test file (CI, session 48).
 */
describe('endPool (PostgreSQL)', () => {
  let admin: Client;

  beforeAll(async () => {
    admin = new Client({ connectionString: testDatabaseUrl() });
    await admin.connect();
  });

  afterAll(async () => {
    await admin?.end();
  });

  const sessionsNamed = async (name: string): Promise<number> =>
    Number((await admin.query<{ n: string }>('select count(*) as n from pg_stat_activity where application_name = $1', [name])).rows[0].n);

  it('returns only once every session of the pool has ended, checked-out ones included', async () => {
    const name = `pool_end_${uniqueSuffix()}`;
    const pool = new Pool({ connectionString: testDatabaseUrl(), application_name: name, max: 4 });
    let connectionsClosed = 0;
    pool.on('connect', (client) => client.on('end', () => (connectionsClosed += 1)));
    const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect(), pool.connect()]);
    await Promise.all(clients.map((client) => client.query('select 1')));
    clients.slice(1).forEach((client) => client.release());
    expect(await sessionsNamed(name)).toBe(4);

    const ended = endPool(pool);
    clients[0].release(); // a client still checked out when the pool is asked to end
    await ended;

    expect(connectionsClosed).toBe(4); // each socket closed, not only asked to
    expect(await sessionsNamed(name)).toBe(0);
  });

  it('returns at once for a pool that never connected', async () => {
    await endPool(new Pool({ connectionString: testDatabaseUrl() }));
  });
});

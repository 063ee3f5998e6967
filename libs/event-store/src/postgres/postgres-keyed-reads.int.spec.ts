import { randomBytes, randomUUID } from 'node:crypto';
import { Pool, type PoolClient, type QueryConfig } from 'pg';
import { tableAccesses } from '@tally/testing';
import { PostgresEventStore } from './postgres-event-store.adapter';
import { ensureSchema } from './postgres-schema.migration';

/**
 * The reads by key of a consumer's batch (its accounts' stream heads, the lock on its streams with the lookup of
 * its new event ids, a recall of events by id) must cost per key, not per row of the tables: a store of 200,000
 * streams, batches of 900 keys, and the plans PostgreSQL gives the store's own statements with their parameters (the
 * custom plans of a prepared statement's first executions on a connection), with and without the statistics an
 * autovacuum would gather. `stream_id = ANY($1)` was planned as a sequential scan of the whole streams table here
 * (30–90 ms a batch, growing with the accounts; docs/benchmarks.md, session 35).
 */
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tally_test';
const schema = `es_keyed_${randomBytes(6).toString('hex')}`;
const STREAMS = 200_000;
const KEYS = 900;

const pool = new Pool({ connectionString: DATABASE_URL, max: 4 });
/** Every statement the store sends, as it sends it (text and parameters), recorded by the connections it uses. */
const sent: QueryConfig[] = [];
pool.on('connect', (client: PoolClient) => {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const [config] = args;
    if (typeof config === 'object' && config !== null && 'text' in config) sent.push(config as QueryConfig);
    return query(...args);
  };
});

const streamId = (i: number) => `account-keyed-${i}`;

beforeAll(async () => {
  await ensureSchema(pool, schema);
  // One event in each of 200,000 streams, written as a bulk load (the store's own appends would take minutes).
  await pool.query(`INSERT INTO "${schema}".streams (stream_id, version) SELECT 'account-keyed-' || i, 1 FROM generate_series(0, $1 - 1) AS i`, [STREAMS]);
  await pool.query(
    `INSERT INTO "${schema}".events (stream_id, version, event_id, type, data)
     SELECT 'account-keyed-' || i, 1, gen_random_uuid(), 'AccountOpened', jsonb_build_object('accountId', 'keyed-' || i) FROM generate_series(0, $1 - 1) AS i`,
    [STREAMS],
  );
}, 120_000);

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

/** The store's statements a batch of KEYS accounts sends: heads, an append to each stream, a read of events by id. */
async function sendBatch(store: PostgresEventStore): Promise<QueryConfig[]> {
  const streams = Array.from({ length: KEYS }, (_, i) => streamId(Math.floor((i * STREAMS) / KEYS)));
  sent.length = 0;
  const heads = await store.streamHeads(streams);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    if (!store.joinTransaction) throw new Error('the PostgreSQL store joins transactions by default');
    const unitOfWork = store.joinTransaction(client);
    await store.appendMany(
      streams.map((id) => ({ streamId: id, expectedVersion: heads.get(id)?.version ?? 0, events: [{ id: randomUUID(), type: 'Probe', data: {} }] })),
      unitOfWork,
    );
    await client.query('ROLLBACK');
  } finally {
    client.release();
  }
  await store.readEvents(Array.from({ length: KEYS }, () => randomUUID()));
  return [...sent];
}

/** A condition with its array constant elided: `(event_id = ANY ('{…}'::uuid[]))`. */
const shortened = (condition: string) => condition.replace(/'\{[^}]*\}'/g, "'{…}'");

async function expectKeyedReadsThroughIndexes(): Promise<void> {
  const store = new PostgresEventStore({ pool, schema });
  try {
    const statements = await sendBatch(store);
    const keyed = statements.filter((s) => /stream-heads|lock-streams|read-events/.test(String(s.name)));
    expect(keyed.map((s) => String(s.name).split(':')[0])).toEqual(
      expect.arrayContaining([expect.stringContaining('stream-heads'), expect.stringContaining('lock-streams'), expect.stringContaining('read-events')]),
    );
    const accesses: { statement: string; access: string }[] = [];
    for (const statement of keyed) {
      for (const { node, relation, condition } of await tableAccesses(pool, statement.text, statement.values)) {
        // Reads only: an INSERT's conflict check (ModifyTable) probes the unique index row by row.
        if ((relation === 'streams' || relation === 'events') && node !== 'ModifyTable') {
          accesses.push({ statement: String(statement.name).split(':')[0], access: `${node} on ${relation}${condition ? ` by ${shortened(condition)}` : ''}` });
        }
      }
    }
    expect(accesses.length).toBeGreaterThanOrEqual(3);
    // Through an index by the keys (one probe per key, or one index scan over the array of them), never the table; a
    // stream head's event by the primary key, one probe per stream found.
    const byKeys = /^(Index (Only )?Scan|Bitmap Heap Scan) on \w+ by \(\w+ = (k(_\d+)?\.key|ANY \('\{…\}'::\w+\[\]\))\)$/;
    const byHead = /^(Index Scan|Bitmap Heap Scan) on events by \(\(stream_id = streams\.stream_id\) AND \(version = streams\.version\)\)$/;
    expect(accesses.filter(({ access }) => !byKeys.test(access) && !byHead.test(access))).toEqual([]);
  } finally {
    await store.close();
  }
}

describe('PostgresEventStore reads by key on a store of 200,000 streams', () => {
  it('reads through the indexes without statistics (a table autovacuum has not analysed)', async () => {
    await expectKeyedReadsThroughIndexes();
  }, 60_000);

  it('reads through the indexes with statistics', async () => {
    await pool.query(`ANALYZE "${schema}".streams`);
    await pool.query(`ANALYZE "${schema}".events`);
    await expectKeyedReadsThroughIndexes();
  }, 60_000);
});

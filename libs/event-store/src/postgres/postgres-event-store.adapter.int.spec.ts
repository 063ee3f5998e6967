import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes, randomUUID } from 'node:crypto';
import { Pool, type PoolClient } from 'pg';
import { DataSource } from 'typeorm';
import { START, type Checkpoint, type EventStore, type NewEvent, type RecordedEvent, type UnitOfWork } from '../event-store.port';
import { EventStoreErrorCode, isEventStoreError } from '../event-store.errors';
import { createEventStore } from '../event-store.provider';
import { deliveredToAnother, describeEventStoreContract } from '../testing';
import { PostgresEventStore, TAIL_BOUND_SQL, widenedXid } from './postgres-event-store.adapter';
import { ensureSchema } from './postgres-schema.migration';
import { createEventStoreMigration } from './migrations/1763700000000-create-event-store';
import { createStreamsLastWriterMigration } from './migrations/1765900000000-streams-last-writer';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tally_test';
// One schema per test file so this file can run in parallel with other suites on the same database.
const schema = `es_test_${randomBytes(6).toString('hex')}`;
const pool = new Pool({ connectionString: DATABASE_URL, max: 10 });
const fastPolling = { minIdleMs: 20, maxIdleMs: 100, errorBackoffMs: 50 };

beforeAll(async () => {
  await ensureSchema(pool, schema);
  await ensureSchema(pool, schema); // idempotent: tools may call it on every start
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describeEventStoreContract('PostgreSQL', {
  atomicAppendMany: true,
  create: async () => createEventStore({ kind: 'postgres', pool, schema, polling: fastPolling }),
  openTransaction: async () => {
    const client = await pool.connect();
    await client.query('BEGIN');
    const end = (sql: string) => async () => {
      try {
        await client.query(sql);
      } finally {
        client.release();
      }
    };
    return { tx: client, commit: end('COMMIT'), rollback: end('ROLLBACK') };
  },
});

// The store as the ledger's idempotent path sees it (and as it sees EventStoreDB): no shared transaction.
describeEventStoreContract('PostgreSQL without a shared transaction (transactional: false)', {
  atomicAppendMany: true,
  create: async () => createEventStore({ kind: 'postgres', pool, schema, polling: fastPolling, transactional: false }),
});

describe('PostgresEventStore (PostgreSQL specifics)', () => {
  let store: PostgresEventStore;

  beforeAll(() => {
    store = new PostgresEventStore({ pool, schema, polling: fastPolling });
  });

  afterAll(async () => {
    await store.close();
  });

  it('reads only the metadata keys asked for: the rest of the metadata (a balance) never leaves PostgreSQL', async () => {
    const streamId = `keys-${randomUUID()}`;
    await store.append({
      streamId,
      expectedVersion: 'no_stream',
      events: [event('A', { n: 1 }, { schemaVersion: 2, balanceAfter: { available: '1.5' } }), event('B', { n: 2 }, { other: 'x', n: null })],
    });

    const read = await store.readStreams([{ streamId, fromVersion: 1 }], { metadataKeys: ['schemaVersion', 'n'] });
    expect(read.get(streamId)?.map((e) => e.metadata)).toEqual([{ schemaVersion: 2 }, { n: null }]);
    expect((await store.readStreams([{ streamId, fromVersion: 2 }], { metadataKeys: [] })).get(streamId)?.map((e) => e.metadata)).toEqual([{}]);
  });

  it('never delivers past a transaction that commits late, then delivers it first (no skipped events)', async () => {
    const tail = await readToEnd(store, START);
    const [streamA, streamB] = [`late-a-${randomUUID()}`, `late-b-${randomUUID()}`];
    const [a1, b1] = [event('A1'), event('B1')];
    const delivered: RecordedEvent[] = [];
    const subscription = store.subscribeToAll({
      after: tail,
      onEvents: async (events) => {
        delivered.push(...events);
      },
    });
    const txA = await pool.connect();
    try {
      // A takes its transaction id and global position first, then stays open.
      await txA.query('BEGIN');
      await store.appendMany([{ streamId: streamA, expectedVersion: 'no_stream', events: [a1] }], join(store, txA));
      // B starts later, so gets a larger position, and commits first.
      await store.append({ streamId: streamB, expectedVersion: 'no_stream', events: [b1] });
      expect(await store.readStream(streamB)).toHaveLength(1); // B is committed and visible...

      // ...yet several polls (and B's NOTIFY) later the tail has delivered nothing past A. Sentinel: the
      // subscription's own reads, counted, not a guess at how long they take.
      const reads = jest.spyOn(store as unknown as { readAllRows: () => Promise<unknown[]> }, 'readAllRows');
      try {
        await eventually(() => reads.mock.calls.length >= 3);
      } finally {
        reads.mockRestore();
      }
      expect(delivered).toEqual([]);
      expect(await store.readAll({ after: tail, limit: 10 })).toEqual([]);

      await txA.query('COMMIT');
    } finally {
      txA.release();
    }
    await eventually(() => delivered.length >= 2);
    // And nothing is delivered twice. Sentinel: delivery is in order, so once a later marker has arrived, a repeat
    // of A or B would have too.
    const marker = event('marker');
    await store.append({ streamId: streamB, expectedVersion: 1, events: [marker] });
    await eventually(() => delivered.some((e) => e.id === marker.id));
    await subscription.stop();
    delivered.splice(delivered.findIndex((e) => e.id === marker.id), 1);

    const [storedA] = await store.readStream(streamA);
    const [storedB] = await store.readStream(streamB);
    expect(delivered.map((e) => [e.id, e.checkpoint])).toEqual([
      [a1.id, storedA.checkpoint],
      [b1.id, storedB.checkpoint],
    ]);
    expect(storedA.checkpoint < storedB.checkpoint).toBe(true);
    expect((await store.readAll({ after: tail, limit: 10 })).map((e) => e.id)).toEqual([a1.id, b1.id, marker.id]);
  });

  // The tail waits for transactions that may still write events: only sessions of the store's own database can. A
  // transaction left open in another database of the cluster (PostgreSQL shared with other products, a report
  // running for an hour) used to hold every event back for as long as it ran, and the balances with them.
  it('delivers past a transaction left open in another database of the cluster, and still waits for one in its own', async () => {
    const tail = await readToEnd(store, START);
    const elsewhere = new Pool({ connectionString: otherDatabaseUrl(DATABASE_URL), max: 1 });
    const other = await elsewhere.connect();
    const own = await pool.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_current_xact_id()'); // takes a transaction id, as any write would
      const first = event('AfterOtherDatabase');
      await store.append({ streamId: `elsewhere-${randomUUID()}`, expectedVersion: 'no_stream', events: [first] });
      expect((await readAllWithin(store, tail, 5_000)).map((e) => e.id)).toEqual([first.id]);

      // A transaction of this database (it could write events) still holds the tail, as before. Read by a store with
      // no bound taken yet (this one's, taken before, would hold the tail by itself for up to 100 ms).
      await own.query('BEGIN');
      await own.query('SELECT pg_current_xact_id()');
      const after = await readToEnd(store, tail);
      const second = event('AfterOwnDatabase');
      await store.append({ streamId: `own-${randomUUID()}`, expectedVersion: 'no_stream', events: [second] });
      const fresh = new PostgresEventStore({ pool, schema, listen: false });
      expect(await fresh.readAll({ after, limit: 10 })).toEqual([]);
      await fresh.close();
      await own.query('COMMIT');
      expect((await readAllWithin(store, after, 5_000)).map((e) => e.id)).toEqual([second.id]);
    } finally {
      await own.query('ROLLBACK').catch(() => undefined);
      own.release();
      await other.query('ROLLBACK').catch(() => undefined);
      other.release();
      await elsewhere.end();
    }
  });

  // The read-model rebuild's locked catch-up relies on it: whatever the relay (another store, another process) read
  // and published, a later readAll by the rebuild's store returns too. A store that read its database's tail bound
  // less than 100 ms before used to reuse it and, with a transaction open in another database holding the cluster's
  // horizon, miss an event another store had already returned.
  it('readAll returns every event another store returned before it, though its own last read was moments ago', async () => {
    const start = await readToEnd(store, START);
    const elsewhere = new Pool({ connectionString: otherDatabaseUrl(DATABASE_URL), max: 1 });
    const other = await elsewhere.connect();
    const [rebuild, relay] = [new PostgresEventStore({ pool, schema, listen: false }), new PostgresEventStore({ pool, schema, listen: false })];
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_current_xact_id()'); // holds the cluster's horizon back
      expect(await rebuild.readAll({ after: start, limit: 10 })).toEqual([]);
      const late = event('CommittedMeanwhile');
      await store.append({ streamId: `meanwhile-${randomUUID()}`, expectedVersion: 'no_stream', events: [late] });
      expect((await relay.readAll({ after: start, limit: 10 })).map((e) => e.id)).toEqual([late.id]);

      expect((await rebuild.readAll({ after: start, limit: 10 })).map((e) => e.id)).toEqual([late.id]);
    } finally {
      await other.query('ROLLBACK').catch(() => undefined);
      other.release();
      await elsewhere.end();
      await rebuild.close();
      await relay.close();
    }
  });

  it("waits for another role's transaction in its database, read by a role without pg_read_all_stats", async () => {
    // Roles are the cluster's: unique names, dropped after. Trust authentication on this machine's PostgreSQL.
    const [reader, writer] = [`es_reader_${randomBytes(4).toString('hex')}`, `es_writer_${randomBytes(4).toString('hex')}`];
    for (const role of [reader, writer]) await pool.query(`CREATE ROLE "${role}" LOGIN`);
    const asRole = (role: string) => {
      const url = new URL(DATABASE_URL);
      url.username = role;
      url.password = '';
      return new Pool({ connectionString: url.toString(), max: 1 });
    };
    const [readerPool, writerPool] = [asRole(reader), asRole(writer)];
    const hidden = await writerPool.connect();
    try {
      await hidden.query('BEGIN');
      const { rows: [{ xid }] } = await hidden.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid');
      // A later transaction commits: the next id to be assigned alone would no longer hold the bound below the writer's.
      const { rows: [{ later }] } = await pool.query<{ later: string }>('SELECT pg_current_xact_id()::text AS later');
      expect(BigInt(later)).toBeGreaterThan(BigInt(xid));
      // The query text of another role's session is hidden from the reader; its transaction id is not.
      const { rows: [{ bound }] } = await readerPool.query<{ bound: string }>(TAIL_BOUND_SQL);
      expect(BigInt(bound)).toBeLessThanOrEqual(BigInt(xid));
    } finally {
      await hidden.query('ROLLBACK').catch(() => undefined);
      hidden.release();
      await Promise.all([readerPool.end(), writerPool.end()]);
      for (const role of [reader, writer]) await pool.query(`DROP ROLE IF EXISTS "${role}"`);
    }
  });

  // readAll orders by transaction id, and a transaction takes its id at its first write, not at its append: a
  // consumer's transaction locks its offsets first, then reads the stream. Were its append to follow a version a
  // later transaction wrote, the tail would deliver the stream's versions out of order.
  it('refuses (retryably) an append in a transaction older than the one that wrote the stream last, so readAll keeps each stream in version order', async () => {
    const tail = await readToEnd(store, START);
    const streamId = `order-${randomUUID()}`;
    const [first, second] = [event('first'), event('second')];
    const older = await pool.connect();
    try {
      await older.query('BEGIN');
      await older.query('SELECT pg_current_xact_id()'); // its id, taken as a consumer's offset lock takes it
      await store.append({ streamId, expectedVersion: 'no_stream', events: [first] }); // a later transaction, committed
      const refused = await store
        .appendMany([{ streamId, expectedVersion: 1, events: [second] }], join(store, older))
        .catch((e: unknown) => e);
      expect(isEventStoreError(refused, EventStoreErrorCode.WRONG_EXPECTED_VERSION)).toBe(true);
      expect((refused as Error).message).toMatch(/later transaction/);
      await older.query('ROLLBACK');
    } finally {
      older.release();
    }
    // The retry, in a transaction of its own, appends after it.
    const retry = await pool.connect();
    try {
      await retry.query('BEGIN');
      await store.appendMany([{ streamId, expectedVersion: 1, events: [second] }], join(store, retry));
      await retry.query('COMMIT');
    } finally {
      retry.release();
    }
    const delivered = (await store.readAll({ after: tail, limit: 1000 })).filter((e) => e.streamId === streamId);
    expect(delivered.map((e) => [e.id, e.version])).toEqual([[first.id, 1], [second.id, 2]]);
  });

  it('appendMany in an external transaction that is rolled back leaves nothing', async () => {
    const [s1, s2] = [`tx-${randomUUID()}`, `tx-${randomUUID()}`];
    const tail = await readToEnd(store, START);
    const tx = await pool.connect();
    try {
      await tx.query('BEGIN');
      const results = await store.appendMany(
        [
          { streamId: s1, expectedVersion: 'no_stream', events: [event('A')] },
          { streamId: s2, expectedVersion: 'no_stream', events: [event('B'), event('C')] },
        ],
        join(store, tx),
      );
      expect(results.map((r) => r.nextExpectedVersion)).toEqual([1, 2]);
      expect(await store.readStream(s1)).toEqual([]); // not committed: invisible to others
      await tx.query('ROLLBACK');
    } finally {
      tx.release();
    }

    expect(await store.readStream(s1)).toEqual([]);
    expect(await store.readStream(s2)).toEqual([]);
    expect((await readToEnd(store, tail)) === tail).toBe(true);
    // Not even the stream row survived: the stream is still new.
    expect(await store.append({ streamId: s1, expectedVersion: 'no_stream', events: [event('D')] })).toMatchObject({
      nextExpectedVersion: 1,
    });
  });

  it("commits events with the caller's own writes, and a conflict leaves the caller's transaction usable", async () => {
    await pool.query(`CREATE TABLE IF NOT EXISTS "${schema}".consumer_offsets (topic_partition text PRIMARY KEY, "offset" bigint)`);
    const [s1, s2] = [`tx-${randomUUID()}`, `tx-${randomUUID()}`];
    await store.append({ streamId: s2, expectedVersion: 0, events: [event('existing')] });
    const tx = await pool.connect();
    try {
      await tx.query('BEGIN');
      await store.appendMany([{ streamId: s1, expectedVersion: 'no_stream', events: [event('A')] }], join(store, tx));
      const conflict = await store
        .appendMany([{ streamId: s2, expectedVersion: 0, events: [event('B')] }], join(store, tx))
        .catch((e: unknown) => e);
      expect(isEventStoreError(conflict, EventStoreErrorCode.WRONG_EXPECTED_VERSION)).toBe(true);
      await tx.query(`INSERT INTO "${schema}".consumer_offsets VALUES ($1, 42)`, [s1]);
      await tx.query('COMMIT');
    } finally {
      tx.release();
    }

    expect(await store.readStream(s1)).toHaveLength(1);
    expect(await store.readStream(s2)).toHaveLength(1);
    const { rows } = await pool.query(`SELECT "offset" FROM "${schema}".consumer_offsets WHERE topic_partition = $1`, [s1]);
    expect(rows).toEqual([{ offset: '42' }]);
  });

  it('reads events by id from any stream, as a joined transaction sees them, and refuses an id that is not a uuid', async () => {
    const [a, b] = [event('A'), event('B')];
    const [s1, s2] = [`ids-${randomUUID()}`, `ids-${randomUUID()}`];
    await store.append({ streamId: s1, expectedVersion: 'no_stream', events: [a] });
    const tx = await pool.connect();
    try {
      await tx.query('BEGIN');
      await store.appendMany([{ streamId: s2, expectedVersion: 'no_stream', events: [b] }], join(store, tx));
      const missing = randomUUID();
      const seen = await store.readEvents([a.id, b.id, missing, a.id], join(store, tx));
      expect(seen.map((e) => [e.id, e.streamId, e.version, e.type]).sort()).toEqual([[a.id, s1, 1, 'A'], [b.id, s2, 1, 'B']].sort());
      expect((await store.readEvents([a.id, b.id])).map((e) => e.id)).toEqual([a.id]); // b is not committed yet
      await tx.query('ROLLBACK');
    } finally {
      tx.release();
    }
    expect(await store.readEvents([])).toEqual([]);
    const bad = await store.readEvents(['not-a-uuid']).catch((e: unknown) => e);
    expect(isEventStoreError(bad, EventStoreErrorCode.INVALID_REQUEST)).toBe(true);
  });

  it('serialises concurrent writers of one stream: no gaps with "any", exactly one winner with a version', async () => {
    const streamId = `race-${randomUUID()}`;
    const anyResults = await Promise.all(
      Array.from({ length: 8 }, () => store.append({ streamId, expectedVersion: 'any', events: [event('X')] })),
    );
    expect(anyResults.map((r) => r.nextExpectedVersion).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    const contenders = await Promise.allSettled(
      Array.from({ length: 6 }, () => store.append({ streamId, expectedVersion: 8, events: [event('Y')] })),
    );
    expect(contenders.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const losers = contenders.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    expect(losers.every((e) => isEventStoreError(e, EventStoreErrorCode.WRONG_EXPECTED_VERSION))).toBe(true);
    expect((await store.readStream(streamId)).map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  // Two transactions can get their ids in one order and the stream's lock in the other: the one with the older id then
  // finds the stream last written by a later transaction. In its own transaction (no unit of work) the store takes
  // the new transaction that asks for, instead of failing the append (seen once in CI in the test above, 8 writers).
  it('an append in its own transaction that finds the stream last written by a later transaction is retried in a new one', async () => {
    const streamId = `later-${randomUUID()}`;
    await store.append({ streamId, expectedVersion: 'any', events: [event('First')] });
    // As if a transaction two ids after this one had written the stream last: the next two transactions are older.
    await pool.query(`UPDATE "${schema}".streams SET last_xid = (pg_current_xact_id()::text::bigint + 3)::text::xid8 WHERE stream_id = $1`, [streamId]);

    const appended = await store.append({ streamId, expectedVersion: 'any', events: [event('Second')] });

    expect(appended).toMatchObject({ nextExpectedVersion: 2, duplicate: false });
    expect((await store.readStream(streamId)).map((e) => e.type)).toEqual(['First', 'Second']);
  });

  it('a concurrent retry of the same new events stores them once', async () => {
    const streamId = `retry-${randomUUID()}`;
    const events = [event('A'), event('B')];
    const attempts = await Promise.allSettled(
      Array.from({ length: 4 }, () => store.append({ streamId, expectedVersion: 'no_stream', events })),
    );
    // Losers either see the duplicate or a retryable WRONG_EXPECTED_VERSION; a retry then sees the duplicate.
    for (const attempt of attempts) {
      if (attempt.status === 'rejected') {
        expect(isEventStoreError(attempt.reason, EventStoreErrorCode.WRONG_EXPECTED_VERSION)).toBe(true);
      }
    }
    expect(await store.append({ streamId, expectedVersion: 'no_stream', events })).toMatchObject({ duplicate: true });
    expect(await store.readStream(streamId)).toHaveLength(2);
  });

  it('rejects a checkpoint it did not issue', async () => {
    await expect(store.readAll({ after: 'garbage', limit: 1 })).rejects.toMatchObject({
      code: EventStoreErrorCode.INVALID_REQUEST,
    });
  });

  it('reports UNAVAILABLE when PostgreSQL cannot be reached', async () => {
    const deadPool = new Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/none', connectionTimeoutMillis: 1_000 });
    const dead = new PostgresEventStore({ pool: deadPool, schema });
    try {
      await expect(dead.readAll({ after: START, limit: 1 })).rejects.toMatchObject({ code: EventStoreErrorCode.UNAVAILABLE });
      await expect(
        dead.append({ streamId: 's', expectedVersion: 'any', events: [event('A')] }),
      ).rejects.toMatchObject({ code: EventStoreErrorCode.UNAVAILABLE });
    } finally {
      await dead.close();
      await deadPool.end();
    }
  });

  it('subscribes without LISTEN too (polling alone), and close() stops its subscriptions', async () => {
    const polling = new PostgresEventStore({ pool, schema, polling: fastPolling, listen: false });
    const streamId = `poll-${randomUUID()}`;
    const seen: string[] = [];
    polling.subscribeToAll({
      after: await readToEnd(polling, START),
      onEvents: async (events) => {
        seen.push(...events.filter((e) => e.streamId === streamId).map((e) => e.id));
      },
    });
    const a = event('A');
    await polling.append({ streamId, expectedVersion: 'no_stream', events: [a] });
    await eventually(() => seen.length === 1);
    await polling.close();
    const b = event('B');
    await polling.append({ streamId, expectedVersion: 1, events: [b] });
    await deliveredToAnother(store, b.id); // sentinel: a running subscription has B, a closed one must not
    expect(seen).toEqual([a.id]);
  });
});

describe('PostgresEventStore single appends and their notifications', () => {
  it('wakes a LISTENing subscriber for a single append that did not notify itself (the trailing notification of its window)', async () => {
    // Polling once a minute: within the test's 15 s an event can only arrive through a notification.
    const slow = { minIdleMs: 60_000, maxIdleMs: 60_000, errorBackoffMs: 60_000 };
    const writer = new PostgresEventStore({ pool, schema, polling: slow, notifyDebounceMs: 1_000 });
    const reader = new PostgresEventStore({ pool, schema, polling: slow });
    const [first, second] = [`notify-${randomUUID()}`, `notify-${randomUUID()}`];
    const seen: string[] = [];
    reader.subscribeToAll({
      after: await readToEnd(reader, START),
      onEvents: async (events) => {
        seen.push(...events.filter((e) => e.streamId === first || e.streamId === second).map((e) => e.id));
      },
    });
    try {
      const [a, b] = [event('A'), event('B')];
      // The first append of a window notifies in its own statement; the reader wakes, reads it and sleeps again.
      await writer.append({ streamId: first, expectedVersion: 0, events: [a] });
      await eventually(() => seen.length === 1);
      // Inside the same 1 s window: this one does not notify itself; the window's trailing NOTIFY wakes the reader.
      await writer.append({ streamId: second, expectedVersion: 0, events: [b] });
      await eventually(() => seen.length === 2);
      expect(seen).toEqual([a.id, b.id]);
    } finally {
      await writer.close();
      await reader.close();
    }
  });
});

describe('PostgresEventStore.readAll across digit boundaries', () => {
  // Its own schema: the rows below are placed at explicit transaction ids and positions (both columns have
  // defaults, so a test may set them), which a shared schema's other events would interleave with.
  const digitSchema = `es_test_${randomBytes(6).toString('hex')}`;
  let store: PostgresEventStore;

  beforeAll(async () => {
    await ensureSchema(pool, digitSchema);
    store = new PostgresEventStore({ pool, schema: digitSchema, listen: false });
  });

  afterAll(async () => {
    await store.close();
    await pool.query(`DROP SCHEMA IF EXISTS "${digitSchema}" CASCADE`);
  });

  it('returns every event once, in (transaction id, position) numeric order, when ids and positions gain a digit', async () => {
    // Numerically ordered. As text, "10" < "9" and "100" < "99": a text sort reorders them and a page boundary
    // then skips some events and repeats others. Transaction ids stay below 101, under any running transaction's
    // id even on a freshly initialised cluster (readAll returns only transactions older than the oldest running).
    const placed: [transactionId: number, globalPosition: number][] = [
      [9, 999], [9, 1_000], [10, 7], [99, 9], [99, 10], [100, 8], [100, 99_999], [100, 100_000], [101, 999_999_999], [101, 1_000_000_000],
    ];
    const { rows: [{ xid }] } = await pool.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid');
    expect(BigInt(xid)).toBeGreaterThan(101n);
    const stream = `digits-${randomUUID()}`;
    for (const [i, [transactionId, position]] of placed.entries()) {
      await pool.query(
        `INSERT INTO "${digitSchema}".events (global_position, transaction_id, stream_id, version, event_id, type, data)
         VALUES ($1, $2::text::xid8, $3, $4, $5, 'Placed', '{}')`,
        [position, transactionId, stream, i + 1, randomUUID()],
      );
    }
    const expected = placed.map(([transactionId, position]) => `${transactionId}/${position}`);

    for (const limit of [1, 2, 3, 100]) {
      const seen: string[] = [];
      for (let after: Checkpoint = START; ; ) {
        const page = await store.readAll({ after, limit });
        if (page.length === 0) break;
        seen.push(...page.map(position));
        after = page[page.length - 1].checkpoint;
      }
      expect({ limit, seen }).toEqual({ limit, seen: expected });
    }
  });
});

describe("the tail's bound across 32-bit transaction id wraparound and digit boundaries", () => {
  // pg_stat_activity and pg_prepared_xacts give 32-bit ids; the events carry 64-bit ones. Widened against the next id
  // to be assigned, in PostgreSQL itself: an id still running is before it, one assigned since is after it.
  it('widens a 32-bit id to the 64-bit id nearest the next one', async () => {
    const cases: [next: bigint, full: bigint][] = [
      [1_000n, 995n], [1_000n, 1_003n], [2n ** 32n + 2n, 2n ** 32n - 3n], [2n ** 32n + 2n, 2n ** 32n + 1n], [2n ** 32n, 2n ** 32n - 1n],
      [9_999_999_999n, 9_999_999_998n], [10_000_000_000n, 9_999_999_997n], [10_000_000_000n, 10_000_000_001n],
      [99_999_999_999n, 99_999_999_999n - 2n ** 31n + 1n],
    ];
    for (const [next, full] of cases) {
      const { rows: [{ widened }] } = await pool.query<{ widened: string }>(
        `SELECT ${widenedXid('$1::text::xid', '$2::numeric')}::text AS widened`,
        [(full % 2n ** 32n).toString(), next.toString()],
      );
      expect({ next, widened: BigInt(widened) }).toEqual({ next, widened: full });
    }
  });
});

function position(e: RecordedEvent): string {
  const [transactionId, globalPosition] = e.checkpoint.split('-').map((part) => BigInt(part));
  return `${transactionId}/${globalPosition}`;
}

describe('event store migration (TypeORM)', () => {
  const migrationSchema = `es_test_${randomBytes(6).toString('hex')}`;
  let dataSource: DataSource;

  beforeAll(async () => {
    // TypeORM keeps its migrations table in `schema`, which must exist before the first migration runs.
    await pool.query(`CREATE SCHEMA "${migrationSchema}"`);
    dataSource = new DataSource({
      type: 'postgres',
      url: DATABASE_URL,
      schema: migrationSchema,
      migrations: [createEventStoreMigration(migrationSchema), createStreamsLastWriterMigration(migrationSchema)],
      logging: false,
    });
    await dataSource.initialize();
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await pool.query(`DROP SCHEMA IF EXISTS "${migrationSchema}" CASCADE`);
  });

  it('creates the tables the adapter uses, adds last_xid to a store that has streams, and drops them on revert', async () => {
    const ran = await dataSource.runMigrations();
    expect(ran.map((m) => m.name)).toEqual([`CreateEventStore_${migrationSchema}_1763700000000`, `StreamsLastWriter_${migrationSchema}_1765900000000`]);
    const migrated = new PostgresEventStore({ pool, schema: migrationSchema, listen: false });
    const streamId = `migrated-${randomUUID()}`;
    await migrated.append({ streamId, expectedVersion: 'no_stream', events: [event('A')] });
    expect(await migrated.readStream(streamId)).toHaveLength(1);
    await ensureSchema(pool, migrationSchema); // same SQL: a no-op on a migrated schema

    // A store from before last_xid, with a stream: the column comes in at 0 and both append paths go on.
    await dataSource.undoLastMigration();
    const columns = async () => (await pool.query(`SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'streams' ORDER BY 1`, [migrationSchema])).rows.map((r: { column_name: string }) => r.column_name);
    expect(await columns()).toEqual(['stream_id', 'version']);
    await dataSource.runMigrations();
    expect(await columns()).toEqual(['last_xid', 'stream_id', 'version']);
    await migrated.append({ streamId, expectedVersion: 1, events: [event('B')] });
    const tx = await pool.connect();
    try {
      await tx.query('BEGIN');
      await migrated.appendMany([{ streamId, expectedVersion: 2, events: [event('C')] }, { streamId: `${streamId}-2`, expectedVersion: 0, events: [event('D')] }], join(migrated, tx));
      await tx.query('COMMIT');
    } finally {
      tx.release();
    }
    expect((await migrated.readStream(streamId)).map((e) => e.type)).toEqual(['A', 'B', 'C']);
    await migrated.close();

    await dataSource.undoLastMigration();
    await dataSource.undoLastMigration();
    const { rows } = await pool.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, [
      migrationSchema,
    ]);
    expect(rows.map((r: { table_name: string }) => r.table_name)).toEqual(['migrations']);
  });
});

function event(type: string, data: Record<string, unknown> = { type }, metadata?: Record<string, unknown>): NewEvent {
  return { id: randomUUID(), type, data, ...(metadata && { metadata }) };
}

async function readToEnd(store: EventStore, after: Checkpoint): Promise<Checkpoint> {
  for (let cp = after; ; ) {
    const page = await store.readAll({ after: cp, limit: 500 });
    if (page.length === 0) return cp;
    cp = page[page.length - 1].checkpoint;
  }
}

async function eventually(probe: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** The same server, its maintenance database `postgres`: another database of the cluster. */
function otherDatabaseUrl(url: string): string {
  const other = new URL(url);
  other.pathname = '/postgres';
  return other.toString();
}

/** The events after `after`, once readAll returns any (polling), or [] when none came within `timeoutMs`. */
async function readAllWithin(store: EventStore, after: Checkpoint, timeoutMs: number): Promise<RecordedEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const page = await store.readAll({ after, limit: 10 });
    if (page.length > 0 || Date.now() > deadline) return page;
    await sleep(50);
  }
}

function join(store: EventStore, tx: PoolClient): UnitOfWork {
  if (!store.joinTransaction) throw new Error('the store offers no joinTransaction');
  return store.joinTransaction(tx);
}


import { Pool, type PoolClient } from 'pg';
import { beginAndLockStoredOffsets, ensureOffsetsTable, quoteSchema, readStoredOffsets, storeOffsetsAndCommit, type PartitionRef } from '../src';
import { uniqueSuffix } from './kafka.harness';

/**
 * The consumer transaction's first and last round trips (BEGIN + lock the offset row; store the offset + COMMIT),
 * each one simple query of two statements with its values spelled as literals, on the real PostgreSQL.
 */
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tally_test';
const schema = `offsets_it_${uniqueSuffix()}`;
const table = `${quoteSchema(schema)}.kafka_consumer_offsets`;
const pool = new Pool({ connectionString: databaseUrl, max: 4 });

const ref = (groupId: string, partition = 0): PartitionRef => ({ groupId, topic: 'it.usage', partition });
/** One partition's transaction. */
const beginAndLockStoredOffset = async (tx: PoolClient, s: string, partition: PartitionRef): Promise<bigint> => (await beginAndLockStoredOffsets(tx, s, [partition]))[0];
const storeOffsetAndCommit = (tx: PoolClient, s: string, partition: PartitionRef, offset: string): Promise<void> => storeOffsetsAndCommit(tx, s, [{ ref: partition, offset }]);

beforeAll(() => ensureOffsetsTable(pool, schema));
afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
  await pool.end();
});

describe('beginAndLockStoredOffsets / storeOffsetsAndCommit', () => {
  it('opens a transaction at -1 for a new partition, and commits the stored offset with it', async () => {
    const partition = ref('fresh');
    const tx = await pool.connect();
    try {
      expect(await beginAndLockStoredOffset(tx, schema, partition)).toBe(-1n);
      await tx.query(`CREATE TABLE ${quoteSchema(schema)}.effects (n int)`);
      await tx.query(`INSERT INTO ${quoteSchema(schema)}.effects VALUES (1)`);
      await storeOffsetAndCommit(tx, schema, partition, '41');
      // Committed: no transaction is open on the connection any more.
      const { rows: [{ open }] } = await tx.query<{ open: boolean }>('SELECT now() <> statement_timestamp() AS open');
      expect(open).toBe(false);
    } finally {
      tx.release();
    }
    expect((await readStoredOffsets(pool, schema, 'fresh', 'it.usage')).get(0)).toBe(41n);
    expect((await pool.query(`SELECT count(*)::int AS n FROM ${quoteSchema(schema)}.effects`)).rows[0].n).toBe(1);
  });

  it('fences a second owner: it waits for the first transaction and then reads the offset it stored', async () => {
    const partition = ref('fenced');
    const first = await pool.connect();
    const second = await pool.connect();
    try {
      await beginAndLockStoredOffset(first, schema, partition);
      let secondRead: bigint | undefined;
      const waiting = beginAndLockStoredOffset(second, schema, partition).then((offset) => (secondRead = offset));
      // The second is blocked on the row lock (seen in pg_locks as a waiting backend), not done.
      await expectBlocked(second);
      expect(secondRead).toBeUndefined();
      await storeOffsetAndCommit(first, schema, partition, '7');
      await waiting;
      expect(secondRead).toBe(7n);
      await second.query('ROLLBACK');
    } finally {
      first.release();
      second.release();
    }
  });

  it('locks and stores several partitions in one transaction, answering each offset in the order asked', async () => {
    const [p0, p1, p2] = [ref('several', 0), ref('several', 1), { ...ref('several', 0), topic: 'it.other' }];
    const first = await pool.connect();
    try {
      await beginAndLockStoredOffsets(first, schema, [p1]);
      await storeOffsetsAndCommit(first, schema, [{ ref: p1, offset: '30' }]);
      expect(await beginAndLockStoredOffsets(first, schema, [p2, p1, p0])).toEqual([-1n, 30n, -1n]);
      // Another owner of any one of them waits for this transaction.
      const second = await pool.connect();
      try {
        const waiting = beginAndLockStoredOffsets(second, schema, [p0]);
        await expectBlocked(second);
        await storeOffsetsAndCommit(first, schema, [{ ref: p0, offset: '5' }, { ref: p1, offset: '31' }, { ref: p2, offset: '9' }]);
        expect(await waiting).toEqual([5n]);
        await second.query('ROLLBACK');
      } finally {
        second.release();
      }
    } finally {
      first.release();
    }
    expect(await readStoredOffsets(pool, schema, 'several', 'it.usage')).toEqual(new Map([[0, 5n], [1, 31n]]));
    expect(await readStoredOffsets(pool, schema, 'several', 'it.other')).toEqual(new Map([[0, 9n]]));
  });

  it('refuses a partition twice, or partitions of two groups, in one transaction', async () => {
    const tx = await pool.connect();
    try {
      await expect(beginAndLockStoredOffsets(tx, schema, [ref('twice', 1), ref('twice', 1)])).rejects.toThrow('a partition appears twice');
      await expect(beginAndLockStoredOffsets(tx, schema, [ref('a', 1), ref('b', 2)])).rejects.toThrow('several groups');
      expect((await tx.query('SELECT 1 AS one')).rows[0].one).toBe(1); // nothing was sent: the connection is as it was
    } finally {
      tx.release();
    }
  });

  it('never moves the offset backwards', async () => {
    const partition = ref('backwards');
    for (const offset of ['10', '3']) {
      const tx = await pool.connect();
      await beginAndLockStoredOffset(tx, schema, partition);
      await storeOffsetAndCommit(tx, schema, partition, offset);
      tx.release();
    }
    expect((await readStoredOffsets(pool, schema, 'backwards', 'it.usage')).get(0)).toBe(10n);
  });

  it('stores a group id and topic with quotes and backslashes verbatim (escaped, not spliced)', async () => {
    const odd: PartitionRef = { groupId: `it'); DROP TABLE x; --\\'`, topic: `t"'\\n`, partition: 5 };
    const tx = await pool.connect();
    await beginAndLockStoredOffset(tx, schema, odd);
    await storeOffsetAndCommit(tx, schema, odd, '12');
    tx.release();
    expect((await readStoredOffsets(pool, schema, odd.groupId, odd.topic)).get(5)).toBe(12n);
  });

  it('leaves the transaction open and aborted when storing the offset fails: its COMMIT never runs, ROLLBACK undoes all', async () => {
    const partition = ref('refused');
    await pool.query(`CREATE FUNCTION ${quoteSchema(schema)}.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.committed_offset = 666 THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`);
    await pool.query(`CREATE TRIGGER refuse BEFORE UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${quoteSchema(schema)}.refuse()`);
    const tx = await pool.connect();
    try {
      await beginAndLockStoredOffset(tx, schema, partition);
      await tx.query(`CREATE TABLE ${quoteSchema(schema)}.refused_effects (n int)`);
      await expect(storeOffsetAndCommit(tx, schema, partition, '666')).rejects.toThrow('refused by the test');
      await expect(tx.query('SELECT 1')).rejects.toThrow(/current transaction is aborted/);
      await tx.query('ROLLBACK');
    } finally {
      tx.release();
      await pool.query(`DROP TRIGGER refuse ON ${table}`);
    }
    expect((await pool.query(`SELECT to_regclass('${schema}.refused_effects') AS t`)).rows[0].t).toBeNull();
    expect((await readStoredOffsets(pool, schema, 'refused', 'it.usage')).get(0)).toBeUndefined();
  });

  it('refuses an offset or a partition that is not a number before sending anything', async () => {
    const tx = await pool.connect();
    try {
      await expect(beginAndLockStoredOffset(tx, schema, { ...ref('bad'), partition: 1.5 })).rejects.toThrow('not a Kafka partition');
      await beginAndLockStoredOffset(tx, schema, ref('bad'));
      await expect(storeOffsetAndCommit(tx, schema, ref('bad'), '1; COMMIT')).rejects.toThrow('not a Kafka offset');
      // Nothing was sent: the transaction is still open and healthy.
      expect((await tx.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      await tx.query('ROLLBACK');
    } finally {
      tx.release();
    }
  });
});

/** Waits until the connection's backend is waiting on a lock. */
async function expectBlocked(client: PoolClient): Promise<void> {
  // node-postgres keeps the backend's pid on the client (not in its typings).
  const pid = (client as unknown as { processID: number }).processID;
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const { rows } = await pool.query<{ waiting: boolean }>(`SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE pid = $1`, [pid]);
    if (rows[0]?.waiting) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`backend ${pid} never waited on a lock`);
}

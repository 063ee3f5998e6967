import { Pool } from 'pg';
import { PostgresEventStore, ensureSchema, type UnitOfWork } from '@tally/event-store';
import type { AccountCommand } from '@tally/ledger-domain';
import { accountStreamId } from '@tally/ledger-events';
import { systemClock } from '@tally/shared';
import { countStatements, createTestSchema, testDatabaseUrl } from '@tally/testing';
import { AccountRepository } from '../src/accounts/account.repository';
import type { LedgerConfig } from '../src/config/ledger.config';

const grant = (accountId: string, key: string): AccountCommand => ({ type: 'GrantCredits', accountId, grantId: key, kind: 'promotional', amount: 1_000_000n, source: `promo:${key}` });

/**
 * The consumer's batch, in the transaction that stores its Kafka offsets: the stream versions it decides on are read
 * with a lock, so no other writer moves those accounts before it commits, and its append is one statement (no second
 * lock, no second version check).
 */
describe("the consumer's batch in its transaction", () => {
  const config = { ACCOUNT_CACHE_SIZE: 100 } as LedgerConfig;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let pool: Pool;
  let store: PostgresEventStore;

  beforeAll(async () => {
    schema = await createTestSchema('consumer_batch_lock');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 4 });
    await ensureSchema(pool, schema.schema);
    store = new PostgresEventStore({ pool, schema: schema.schema, listen: false });
  });

  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await schema?.drop();
  });

  it('locks the accounts it reads, appends in one statement, and an HTTP command on them waits for its commit', async () => {
    const [known, fresh] = ['batch-lock-known', 'batch-lock-fresh'];
    const http = new AccountRepository(store, config, systemClock);
    const before = (await http.execute(grant(known, 'before'), 'before')).version; // the account opened, and a grant
    const consumer = new AccountRepository(store, config, systemClock);

    const tx = await pool.connect();
    let late: Promise<unknown> | undefined;
    try {
      await tx.query('BEGIN');
      const unitOfWork = store.joinTransaction?.(tx) as UnitOfWork;
      const statements = countStatements(tx);
      const { saved, refused } = await consumer.executeBatch(
        [
          { command: grant(known, 'a'), commandKey: 'a' },
          { command: grant(fresh, 'b'), commandKey: 'b' },
          { command: grant(known, 'c'), commandKey: 'c' },
        ],
        unitOfWork,
      );
      expect(statements()).toBe(2); // the versions, locked; the append
      expect(refused).toEqual([]);
      expect([...saved].map(([accountId, { version }]) => [accountId, version]).sort()).toEqual([[fresh, 2], [known, before + 2]].sort());

      const taken = await pool.query(`SELECT 1 FROM ${schema.schema}.streams WHERE stream_id = $1 FOR UPDATE NOWAIT`, [accountStreamId(known)]).catch((e: unknown) => e);
      expect(taken).toMatchObject({ code: '55P03' }); // lock_not_available while the batch's transaction lasts
      // An HTTP command on the same account now waits for the batch, then decides on what it appended.
      late = http.execute(grant(known, 'after'), 'after');
      await tx.query('COMMIT');
    } finally {
      tx.release();
    }
    expect(await late).toMatchObject({ version: before + 3 });
    expect((await store.readStream(accountStreamId(known))).map((e) => e.data.grantId ?? e.type)).toEqual(['AccountOpened', 'before', 'a', 'c', 'after']);
    expect((await store.readStream(accountStreamId(fresh))).map((e) => e.data.grantId ?? e.type)).toEqual(['AccountOpened', 'b']);
  });
});

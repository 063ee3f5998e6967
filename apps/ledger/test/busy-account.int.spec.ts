import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'pg';
import { PostgresEventStore, ensureSchema, type NewEvent, type UnitOfWork } from '@tally/event-store';
import { initialState, type AccountCommand, type AccountState } from '@tally/ledger-domain';
import { systemClock } from '@tally/shared';
import { countStatements, createTestSchema, testDatabaseUrl } from '@tally/testing';
import { AccountRepository } from '../src/accounts/account.repository';
import { accountStreamId } from '@tally/ledger-events';
import type { LedgerConfig } from '../src/config/ledger.config';

const grant = (accountId: string, key: string): AccountCommand => ({ type: 'GrantCredits', accountId, grantId: key, kind: 'promotional', amount: 1_000_000n, source: `promo:${key}` });

/**
 * An HTTP command on an account another writer keeps appending to (the consumer catching up after an outage):
 * a lost race is retried from the cached state plus what the winner appended. It used to drop the cache, so each
 * retry re-read the whole stream, lost the race again and answered 500 for as long as the other writer was busy.
 */
describe('HTTP commands on a busy account', () => {
  const accountId = 'busy-account';
  const config = { ACCOUNT_CACHE_SIZE: 100 } as LedgerConfig;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let pool: Pool;
  let store: PostgresEventStore;

  beforeAll(async () => {
    schema = await createTestSchema('busy_account');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 6 });
    await ensureSchema(pool, schema.schema);
    store = new PostgresEventStore({ pool, schema: schema.schema, listen: false });
  });

  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await schema?.drop();
  });

  it('a grant racing another writer on a 10,000-event stream succeeds, retrying from its cached state', async () => {
    // History and the other writer's events, decided up front by the repository's own decider.
    const decider = new AccountRepository(store, config, systemClock) as unknown as {
      decideWithSnapshots: (state: AccountState, command: AccountCommand, key: string, now: Date) => { newEvents: NewEvent[]; state: AccountState };
    };
    let state = initialState;
    const decide = (key: string): NewEvent[] => {
      const decided = decider.decideWithSnapshots(state, grant(accountId, key), key, new Date());
      state = decided.state;
      return decided.newEvents;
    };
    const history = Array.from({ length: 10_000 }, (_, i) => decide(`h-${i}`)).flat();
    const others = Array.from({ length: 2_000 }, (_, i) => decide(`o-${i}`));
    await store.appendMany([{ streamId: accountStreamId(accountId), expectedVersion: 'no_stream', events: history }]);

    const http = new AccountRepository(store, config, systemClock);
    await http.load(accountId); // warm, as a running ledger's cache is

    // The other writer appends every ~25 ms, never waiting for anyone (as a consumer's batches do).
    let writing = true;
    const writer = (async () => {
      for (const events of others) {
        if (!writing) return;
        await store.appendMany([{ streamId: accountStreamId(accountId), expectedVersion: 'any', events }]);
        await sleep(25);
      }
    })();
    const failed: string[] = [];
    let done = 0;
    const deadline = Date.now() + 20_000;
    try {
      for (let i = 0; i < 15 && Date.now() < deadline; i++) {
        const started = Date.now();
        await http.execute(grant(accountId, `g-${i}`), `g-${i}`).then(
          () => done++,
          (error: Error) => failed.push(`g-${i}: ${error.message} after ${Date.now() - started} ms`),
        );
      }
    } finally {
      writing = false;
      await writer;
    }
    expect(failed).toEqual([]);
    expect(done).toBe(15);
  }, 60_000);

  /**
   * The consumer's batch, in the transaction that stores its Kafka offsets, reads the stream versions it decides on
   * with a lock: no other writer moves those accounts before it commits, and its append is one statement.
   */
  it("waits for a consumer's batch on the account, which locked its streams when it read them and appended in one statement", async () => {
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

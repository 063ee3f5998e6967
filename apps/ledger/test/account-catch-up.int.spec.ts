import { Pool } from 'pg';
import { PostgresEventStore, ensureSchema, type StreamRead } from '@tally/event-store';
import { balanceOf, type AccountCommand } from '@tally/ledger-domain';
import { systemClock } from '@tally/shared';
import { createTestSchema, testDatabaseUrl } from '@tally/testing';
import { AccountRepository } from '../src/accounts/account.repository';
import type { LedgerConfig } from '../src/config/ledger.config';

const grant = (accountId: string, key: string, amount: bigint): AccountCommand => ({ type: 'GrantCredits', accountId, grantId: key, kind: 'promotional', amount, source: `promo:${key}` });

/**
 * A consumer batch touches hundreds of accounts; those its cache is behind on (evicted, written by another instance,
 * a fresh process) are read from the store in one readStreams call, not one readStream per account (which made a
 * batch over 100,000 accounts cost hundreds of round trips). Each account still folds exactly its own new events.
 */
describe('loading many accounts the cache is behind on', () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let pool: Pool;
  let store: PostgresEventStore;
  const reads: StreamRead[][] = [];

  beforeAll(async () => {
    schema = await createTestSchema('catch_up');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 4 });
    await ensureSchema(pool, schema.schema);
    store = new PostgresEventStore({ pool, schema: schema.schema, listen: false });
    const readStreams = store.readStreams.bind(store);
    store.readStreams = (requests) => {
      reads.push([...requests]);
      return readStreams(requests);
    };
  });

  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await schema?.drop();
  });

  it('folds each account from where its cache stood, in one read for all of them', async () => {
    const config = { ACCOUNT_CACHE_SIZE: 1_000, ACCOUNT_CACHE_REMEMBERED: 250_000 } as LedgerConfig;
    const writer = new AccountRepository(store, config, systemClock);
    const reader = new AccountRepository(store, config, systemClock);
    const accounts = Array.from({ length: 50 }, (_, i) => `catch-up-${i}`);
    for (const accountId of accounts) await writer.execute(grant(accountId, `${accountId}-a`, 1_000_000n), `${accountId}-a`);
    const cached = await reader.loadMany(accounts); // the reader's cache: one grant each

    // Another instance writes on: a second grant for every other account, a third for some.
    for (const [i, accountId] of accounts.entries()) {
      if (i % 2 === 0) await writer.execute(grant(accountId, `${accountId}-b`, 2_000_000n), `${accountId}-b`);
      if (i % 10 === 0) await writer.execute(grant(accountId, `${accountId}-c`, 4_000_000n), `${accountId}-c`);
    }
    reads.length = 0;

    const loaded = await reader.loadMany([...accounts, 'catch-up-new', accounts[0]]);

    expect(reads).toHaveLength(1);
    // Only the accounts behind, each from the version cached (its event checked to be the cached one) on.
    expect(reads[0].map(({ streamId, fromVersion }) => [streamId, fromVersion])).toEqual(
      accounts.filter((_, i) => i % 2 === 0).map((accountId) => [`account-${accountId}`, cached.get(accountId)?.version ?? NaN]),
    );
    for (const [i, accountId] of accounts.entries()) {
      const expected = 1_000_000n + (i % 2 === 0 ? 2_000_000n : 0n) + (i % 10 === 0 ? 4_000_000n : 0n);
      const account = loaded.get(accountId);
      expect({ accountId, available: account && balanceOf(account.state).available }).toEqual({ accountId, available: expected });
      expect(account?.version).toEqual((await writer.load(accountId)).version);
    }
    expect(loaded.get('catch-up-new')).toMatchObject({ version: 0, state: { exists: false } });
  });
});

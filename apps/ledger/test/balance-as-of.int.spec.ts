import { Pool } from 'pg';
import { PostgresEventStore } from '@tally/event-store';
import { available } from '@tally/ledger-domain';
import { systemClock } from '@tally/shared';
import { createTestSchema, endPool, testDatabaseUrl } from '@tally/testing';
import { AccountRepository } from '../src/accounts/account.repository';
import { LedgerConfig } from '../src/config/ledger.config';
import { migrateLedger } from '../src/database/data-source.provider';

/**
 * GET /balance?at= folds the account's events up to an instant. It read the whole stream first, whatever the instant
 * (a million events in memory for an `at` in the account's first hour); now it reads page by page and stops at the
 * first event recorded after it. Real PostgreSQL.
 */
describe('the balance as of an instant (PostgreSQL)', () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let pool: Pool;
  let store: PostgresEventStore;
  let config: LedgerConfig;

  beforeAll(async () => {
    schema = await createTestSchema('balance_as_of');
    config = Object.assign(new LedgerConfig(), { DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema.schema });
    await migrateLedger(config);
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 4 });
    store = new PostgresEventStore({ pool, schema: schema.schema, listen: false });
  });

  afterAll(async () => {
    await store?.close();
    if (pool) await endPool(pool);
    await schema?.drop();
  });

  it('reads only as far as the instant: an early instant of a long stream reads its first page, not the stream', async () => {
    const accounts = new AccountRepository(store, config, systemClock);
    const accountId = 'acct-as-of';
    for (let i = 0; i < 2_100; i++) {
      await accounts.execute({ type: 'GrantCredits', accountId, grantId: `g${i}`, kind: 'purchased', amount: 1_000_000n, source: 'pack:test' }, `g${i}`);
    }
    const first = await store.readStream(`account-${accountId}`, { toVersion: 11 });
    const [tenth, eleventh] = [first[9], first[10]];
    expect(eleventh.recordedAt.getTime()).toBeGreaterThan(tenth.recordedAt.getTime());
    const grantsByThen = first.slice(0, 10).filter((event) => event.type === 'CreditsGranted').length; // the account's opening too

    let eventsRead = 0;
    const readStream = store.readStream.bind(store);
    store.readStream = async (...args) => {
      const events = await readStream(...args);
      eventsRead += events.length;
      return events;
    };
    const early = await accounts.loadAsOf(accountId, tenth.recordedAt);
    expect(available(early.state)).toBe(BigInt(grantsByThen) * 1_000_000n);
    expect(early.version).toBe(10);
    expect(eventsRead).toBeLessThanOrEqual(1_000);

    eventsRead = 0;
    const now = await accounts.loadAsOf(accountId, new Date());
    expect(available(now.state)).toBe(2_100_000_000n);
    expect(eventsRead).toBe(now.version); // every event, once
  }, 120_000);
});

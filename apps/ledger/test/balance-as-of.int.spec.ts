import { Pool } from 'pg';
import { PostgresEventStore } from '@tally/event-store';
import { available, balanceOf } from '@tally/ledger-domain';
import { usageCommand } from '@tally/ledger-domain/testing';
import { systemClock } from '@tally/shared';
import { createTestSchema, endPool, testDatabaseUrl } from '@tally/testing';
import { AccountRepository } from '../src/accounts/account.repository';
import { AccountSnapshotRepository } from '../src/accounts/account-snapshot.repository';
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

  // Each usage leaves a debit in the state (what a refund needs): folded whole, a stream of a million usages held
  // gigabytes in the API pod answering one request.
  it('folds a stream longer than the whole-fold page forgetting as it goes, to the same balance, refunds of early usage included', async () => {
    const snapshots = { store: new AccountSnapshotRepository(pool, schema.schema), every: 100, logger: console, wholeFoldPage: 1_000 };
    const accounts = new AccountRepository(store, config, systemClock, snapshots);
    const accountId = 'acct-as-of-long';
    await accounts.execute({ type: 'GrantCredits', accountId, grantId: 'g', kind: 'purchased', amount: 1_000_000_000n, source: 'pack:test' }, 'g');
    for (let i = 0; i < 1_100; i++) await accounts.execute(usageCommand(`u${i}`, 1_000n, { accountId }), `usage:u${i}`);
    await accounts.execute({ type: 'RefundUsage', accountId, refundId: 'refund:r', usageId: 'u3', reason: 'test', restoreExpired: false }, 'refund:r');
    await accounts.snapshotsWritten();

    const asOf = await accounts.loadAsOf(accountId, new Date());
    const whole = await new AccountRepository(store, config, systemClock).load(accountId);
    expect(asOf.version).toBe(whole.version);
    expect(balanceOf(asOf.state)).toEqual(balanceOf(whole.state));
    expect(whole.state.debits.size).toBe(1_100);
    expect(asOf.state.debits.size).toBeLessThanOrEqual(1); // the refunded one
  }, 120_000);
});

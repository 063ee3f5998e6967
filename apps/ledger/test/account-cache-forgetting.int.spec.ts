import { Pool } from 'pg';
import { PostgresEventStore } from '@tally/event-store';
import { balanceOf, type AccountCommand } from '@tally/ledger-domain';
import { usageCommand } from '@tally/ledger-domain/testing';
import { systemClock } from '@tally/shared';
import { createTestSchema, testDatabaseUrl } from '@tally/testing';
import { AccountRepository, type AccountCache } from '../src/accounts/account.repository';
import { AccountSnapshotRepository } from '../src/accounts/account-snapshot.repository';
import type { LedgerConfig } from '../src/config/ledger.config';
import { migrateLedger } from '../src/database/data-source.provider';

const ACCOUNT = 'forgetful-1';
const usage = (usageId: string, amount: bigint): AccountCommand => usageCommand(usageId, amount, { accountId: ACCOUNT });
const refund = (usageId: string, key: string): AccountCommand => ({ type: 'RefundUsage', accountId: ACCOUNT, refundId: `refund:${key}`, usageId, reason: 'test', restoreExpired: false });

/**
 * The account cache's memory budget (ACCOUNT_CACHE_REMEMBERED) on the real PostgreSQL: an account the cache made forget
 * its usage keys and debits in place, long before any snapshot, still decides exactly as the whole stream does:
 * a redelivered usage is a no-op, the same key with other content a conflict, a refund of a forgotten debit exact.
 */
describe('the account cache forgetting beyond its budget', () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let pool: Pool;
  let store: PostgresEventStore;
  let repository: AccountRepository;
  const version = async () => (await pool.query<{ version: number }>(`select version from "${schema.schema}".streams where stream_id = $1`, [`account-${ACCOUNT}`])).rows[0].version;
  const cached = () => (repository as unknown as { cache: AccountCache }).cache.get(ACCOUNT);

  beforeAll(async () => {
    schema = await createTestSchema('cache_forgetting');
    await migrateLedger({ DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema.schema } as LedgerConfig);
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 4 });
    store = new PostgresEventStore({ pool, schema: schema.schema, listen: false });
    const snapshots = { store: new AccountSnapshotRepository(pool, schema.schema), every: 1_000, logger: console };
    repository = new AccountRepository(store, { ACCOUNT_CACHE_SIZE: 100, ACCOUNT_CACHE_REMEMBERED: 20 } as LedgerConfig, systemClock, snapshots);
    await repository.execute({ type: 'GrantCredits', accountId: ACCOUNT, grantId: 'g-1', kind: 'purchased', amount: 1_000_000_000n, source: 'test' }, 'g-1');
    for (let i = 0; i < 30; i++) await repository.execute(usage(`u-${i}`, 1_000n + BigInt(i)), `usage:u-${i}`);
  });

  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await schema?.drop();
  });

  it('forgets the usage keys and unrefunded debits of an account past the budget, with no snapshot written', async () => {
    const state = cached()?.state;
    expect(state?.partialMemory).toBe(true);
    expect(state?.debits.size).toBeLessThan(30);
    expect((await pool.query(`select 1 from "${schema.schema}".account_snapshots`)).rowCount).toBe(0);
  });

  it('keeps a redelivered usage it forgot a no-op, and refuses the same key with other content', async () => {
    const before = await version();
    expect((await repository.execute(usage('u-0', 1_000n), 'usage:u-0')).events).toEqual([]);
    const conflict = await repository.execute(usage('u-1', 9_999n), 'usage:u-1').catch((error: { code?: string }) => error.code);
    expect(conflict).toBe('IDEMPOTENCY_CONFLICT');
    expect(await version()).toBe(before);
  });

  it('refunds a usage whose debit it forgot exactly, once, and its balance is the whole stream folded', async () => {
    const refunded = await repository.execute(refund('u-3', 'r-1'), 'refund:r-1');
    expect(refunded.events).toHaveLength(1);
    expect(refunded.events[0]).toMatchObject({ type: 'UsageRefunded', data: { usageId: 'u-3', amount: 1_003n } });
    const again = await repository.execute(refund('u-3', 'r-2'), 'refund:r-2').catch((error: { code?: string }) => error.code);
    expect(again).toBe('REFUND_EXCEEDS_DEBIT');
    await repository.execute(usage('u-new', 7n), 'usage:u-new');

    const whole = await new AccountRepository(store, { ACCOUNT_CACHE_SIZE: 100, ACCOUNT_CACHE_REMEMBERED: 1_000_000 } as LedgerConfig, systemClock).load(ACCOUNT);
    const forgetful = cached() ?? { version: -1, state: whole.state };
    expect(forgetful.version).toBe(whole.version);
    expect(balanceOf(forgetful.state)).toEqual(balanceOf(whole.state));
  });
});

import { Pool } from 'pg';
import { BALANCE_CHANGED_CHANNEL } from '@tally/ledger-read-models';
import { testDatabaseUrl, uniqueSuffix, waitFor } from '@tally/testing';
import type { BalanceReadRepository, ProjectedBalance } from '../src/read-models/balance/balance.repository';
import { BalanceNotifications } from '../src/read-models/balance/balance-notifications.service';

/**
 * A balance read after a notification can fail (a terminated session, too many connections); the live streams must
 * still get the balance, not keep the old one until the account's next change. Real LISTEN/NOTIFY on PostgreSQL; the
 * read model is a stand-in whose first read fails.
 */
describe('live balance streams after a failed read (real PostgreSQL LISTEN/NOTIFY)', () => {
  const pool = new Pool({ connectionString: testDatabaseUrl(), max: 3 });
  afterAll(() => pool.end());

  it('reads the account again after a read failed, and hands the balance to its streams', async () => {
    const accountId = `acct-refresh-${uniqueSuffix()}`;
    let reads = 0;
    const balances = {
      find: async () => {
        reads += 1;
        if (reads === 1) throw new Error('terminating connection due to administrator command');
        return { accountId, streamVersion: 2, available: '15' } as unknown as ProjectedBalance;
      },
    } as unknown as BalanceReadRepository;
    const notifications = new BalanceNotifications(pool, balances);
    const seen: ProjectedBalance[] = [];
    const unsubscribe = await notifications.subscribe(accountId, (balance) => seen.push(balance));
    try {
      await pool.query('SELECT pg_notify($1, $2)', [BALANCE_CHANGED_CHANNEL, accountId]);
      await waitFor(() => seen.length > 0, 10_000);
      expect(seen[0]).toMatchObject({ available: '15' });
      expect(reads).toBe(2);
    } finally {
      unsubscribe();
      await notifications.onApplicationShutdown();
    }
  });
});

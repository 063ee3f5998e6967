import { Client, Pool } from 'pg';
import { BALANCE_CHANGED_CHANNEL } from '@tally/ledger-read-models';
import { createTestSchema, testDatabaseUrl, uniqueSuffix, waitFor } from '@tally/testing';
import { BalanceReadRepository, type ProjectedBalance } from '../src/read-models/balance/balance.repository';
import { BalanceNotifications } from '../src/read-models/balance/balance-notifications.service';
import { AccountStream } from './history/account-stream.fixtures';
import { applyBatch, migrateReadModels, testConfig } from './history/read-model.fixtures';

/**
 * A balance read after a notification can fail (a terminated session, a timeout, too many connections); the live
 * streams must still get the balance, not keep the old one until the account's next change. Real PostgreSQL
 * throughout: the read models as the projection writes them, LISTEN/NOTIFY, and a read that really fails (the
 * balances table locked against it, under a 300 ms statement timeout).
 */
describe('live balance streams after a failed read (real PostgreSQL)', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let pool: Pool;
  let readPool: Pool;
  const locker = new Client({ connectionString: testDatabaseUrl() });

  beforeAll(async () => {
    schema = await createTestSchema('ledger_live_refresh');
    await migrateReadModels(schema.schema);
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 3 });
    // The repository's reads give up after 300 ms, as a ledger's do after PG_QUERY_TIMEOUT_MS.
    readPool = new Pool({ connectionString: testDatabaseUrl(), max: 3, options: '-c statement_timeout=300' });
    await locker.connect();
  });

  afterAll(async () => {
    await locker.query('ROLLBACK').catch(() => undefined);
    await locker.end();
    await readPool?.end();
    await pool?.end();
    await schema?.drop();
  });

  it('reads the account again after a read failed, and hands the balance to its streams', async () => {
    const account = new AccountStream(`acct-refresh-${uniqueSuffix()}`, '2025-03-01T00:00:00.000Z', false);
    await applyBatch(pool, schema.schema, [account.opened(), account.granted('promotional', '15', 'welcome')]);

    const balances = new BalanceReadRepository(readPool, testConfig(schema.schema));
    const failures: unknown[] = [];
    const findMany = balances.findMany.bind(balances);
    jest.spyOn(balances, 'findMany').mockImplementation((accountIds) =>
      findMany(accountIds).catch((error: unknown) => {
        failures.push(error);
        throw error;
      }),
    );
    const notifications = new BalanceNotifications(pool, balances);
    const seen: ProjectedBalance[] = [];
    const unsubscribe = await notifications.subscribe(account.accountId, (balance) => seen.push(balance));
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${schema.schema}".balances IN ACCESS EXCLUSIVE MODE`);
      await pool.query('SELECT pg_notify($1, $2)', [BALANCE_CHANGED_CHANNEL, account.accountId]);
      await waitFor(() => failures.length > 0, 10_000);
      expect(seen).toEqual([]);
      await locker.query('ROLLBACK');

      await waitFor(() => seen.length > 0, 10_000);
      expect(seen[0]).toMatchObject({ accountId: account.accountId, streamVersion: 2, available: '15' });
      expect((failures[0] as Error).message).toContain('statement timeout');
    } finally {
      unsubscribe();
      await notifications.onApplicationShutdown();
    }
  });

  it('after the LISTEN connection was lost, reads every followed account again in a few reads, not one query each', async () => {
    // One query per account was a herd on the pool the commands use: 10,000 open credits pages, 10,000 queries at once,
    // each failing on its own once the pool's wait gave up, and read again a second later.
    const FOLLOWED = 1_000;
    const account = new AccountStream(`acct-herd-${uniqueSuffix()}`, '2025-03-01T00:00:00.000Z', false);
    await applyBatch(pool, schema.schema, [account.opened(), account.granted('promotional', '7', 'welcome')]);
    const reads: unknown[][] = [];
    const countingPool = new Pool({ connectionString: testDatabaseUrl(), max: 3 });
    const query = countingPool.query.bind(countingPool) as (...args: unknown[]) => unknown;
    (countingPool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      reads.push((args[1] as unknown[] | undefined) ?? []);
      return query(...args);
    };
    const listenPool = new Pool({ connectionString: testDatabaseUrl(), max: 2, application_name: `herd-${uniqueSuffix()}` });
    const notifications = new BalanceNotifications(listenPool, new BalanceReadRepository(countingPool, testConfig(schema.schema)));
    const seen: ProjectedBalance[] = [];
    const followed = [account.accountId, ...Array.from({ length: FOLLOWED - 1 }, (_, i) => `acct-herd-none-${i}`)];
    const unsubscribes = await Promise.all(followed.map((accountId) => notifications.subscribe(accountId, (balance) => seen.push(balance))));
    try {
      const asked = () => new Set(reads.flatMap((values) => values.flat())).size;
      expect(asked()).toBe(0);
      await locker.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [listenPool.options.application_name]);
      await waitFor(() => asked() >= FOLLOWED, 15_000);
      expect(reads.length).toBeLessThanOrEqual(2);
      await waitFor(() => seen.length > 0, 10_000);
      expect(seen).toEqual([expect.objectContaining({ accountId: account.accountId, available: '7' })]);
    } finally {
      for (const unsubscribe of unsubscribes) unsubscribe();
      await notifications.onApplicationShutdown();
      await Promise.all([countingPool.end(), listenPool.end()]);
    }
  });
});

import { createServicePool } from '../src/database/service-pool.provider';
import { testDatabaseUrl } from '../src/testing/index';

describe('a service pool', () => {
  const warnings: string[] = [];
  const pool = createServicePool(testDatabaseUrl(), 2, { warn: (_fields, message) => warnings.push(message) }, 'pool-test', { queryTimeoutMs: 1_000 });

  afterAll(() => pool.end());

  it('runs its sessions without JIT, named after the service', async () => {
    const { rows } = await pool.query<{ jit: string; name: string }>(`SELECT current_setting('jit') AS jit, current_setting('application_name') AS name`);
    expect(rows).toEqual([{ jit: 'off', name: 'tally-pool-test' }]);
    expect(warnings).toEqual([]);
  });

  it('ends a transaction left idle and cancels a statement whose client is gone (settings), and gives up on a statement unanswered', async () => {
    const { rows } = await pool.query<{ idle: string; check: string }>(
      `SELECT current_setting('idle_in_transaction_session_timeout') AS idle, current_setting('client_connection_check_interval') AS check`,
    );
    expect(rows).toEqual([{ idle: '5min', check: '5s' }]);
    await expect(pool.query('SELECT pg_sleep(3)')).rejects.toThrow('Query read timeout');
  });
});

import { createServicePool } from '../src/database/service-pool.provider';
import { testDatabaseUrl } from '../src/testing/index';

describe('a service pool', () => {
  const warnings: string[] = [];
  const pool = createServicePool(testDatabaseUrl(), 2, { warn: (_fields, message) => warnings.push(message) }, 'pool-test');

  afterAll(() => pool.end());

  it('runs its sessions without JIT, named after the service', async () => {
    const { rows } = await pool.query<{ jit: string; name: string }>(`SELECT current_setting('jit') AS jit, current_setting('application_name') AS name`);
    expect(rows).toEqual([{ jit: 'off', name: 'tally-pool-test' }]);
    expect(warnings).toEqual([]);
  });
});

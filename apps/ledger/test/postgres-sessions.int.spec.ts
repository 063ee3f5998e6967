import { loadConfig } from '@tally/shared';
import { ledgerTestEnv } from '@tally/testing';
import { LedgerConfig } from '../src/config/ledger.config';
import { createLedgerDataSource } from '../src/database/data-source.provider';

describe("the ledger's migration sessions", () => {
  it('carry its name in pg_stat_activity and run without JIT', async () => {
    const config = loadConfig(LedgerConfig, { ...ledgerTestEnv([]).env, DATABASE_SCHEMA: 'ledger_sessions' });
    const db = await createLedgerDataSource(config).initialize();
    try {
      const rows = await db.query(`select application_name as name, current_setting('jit') as jit from pg_stat_activity where pid = pg_backend_pid()`);
      expect(rows).toEqual([{ name: 'tally-ledger-migrations', jit: 'off' }]);
    } finally {
      await db.destroy();
    }
  });
});

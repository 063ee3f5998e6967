import { loadConfig } from '@tally/shared';
import { ledgerTestEnv, sessionSettingsOf } from '@tally/testing';
import { LedgerConfig } from '../src/config/ledger.config';
import { createLedgerDataSource } from '../src/database/data-source.provider';

describe("the ledger's migration sessions", () => {
  it('carry its name in pg_stat_activity and run without JIT', async () => {
    const config = loadConfig(LedgerConfig, { ...ledgerTestEnv([]).env, DATABASE_SCHEMA: 'ledger_sessions' });
    expect(await sessionSettingsOf(createLedgerDataSource(config))).toEqual({ name: 'tally-ledger-migrations', jit: 'off' });
  });
});

import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { forget, type AccountState } from '@tally/ledger-domain';
import { stateAfterUsages } from '@tally/ledger-domain/testing';
import type { Micro } from '@tally/money';
import { loadConfig } from '@tally/shared';
import { LedgerConfig } from '../config/ledger.config';

/** What the memory target allows the ledger (README: RSS with 1,000,000 accounts touched ≤ 512 MB). */
const LEDGER_MEMORY_BOUND_MB = 512;

/** An account as the cache holds it between snapshots: a purchase, then `usages` usage events of one model each. */
const busyAccount = (account: string, usages: number): AccountState =>
  stateAfterUsages(account, usages, (command) => ({
    ...command, usageId: `${command.usageId}-7f3c9a1e`, amount: 250_000n as Micro, models: ['gpt-4o'],
    pricing: { rateCardVersion: 'rc-2026-03', lines: [{ model: 'gpt-4o', feature: 'chat', amount: 250_000n as Micro, inputTokens: 1_200, outputTokens: 350 }] },
  }));

/** Heap bytes each usage keeps in a cached state (the debit a refund may name, which is also its idempotency key), and
 * what an account keeps once it forgot them, measured. */
function retainedBytes(accounts: number, usages: number): { perUsage: number; perForgottenAccount: number } {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const measure = (make: (i: number) => AccountState) => {
    gc();
    const before = process.memoryUsage().heapUsed;
    const held = Array.from({ length: accounts }, (_, i) => make(i));
    gc();
    const bytes = process.memoryUsage().heapUsed - before;
    expect(held).toHaveLength(accounts); // keeps them alive until measured
    return bytes;
  };
  const whole = measure((i) => busyAccount(`acct-${i}`, usages));
  const forgotten = measure((i) => forget(busyAccount(`acct-${i}`, usages)));
  return { perUsage: (whole - forgotten) / (accounts * usages), perForgottenAccount: forgotten / accounts };
}

describe('the account cache with its default config', () => {
  // A debit one bucket paid in whole for one model is kept as the two ids, and remembers the usage's key too (the
  // domain's DebitRecord): ~270 bytes a usage on Node 24, where the lists and a key in `seen` took ~850.
  it('keeps a remembered usage compact', () => {
    expect(retainedBytes(200, 100).perUsage).toBeLessThanOrEqual(400);
  });

  // Each cached account remembers every usage since its last snapshot (at most ACCOUNT_SNAPSHOT_EVERY − 1), and the
  // cache forgets in place beyond ACCOUNT_CACHE_REMEMBERED keys and debits in all (`AccountCache` in
  // account.repository.ts). The worst case is that budget, full, plus what ACCOUNT_CACHE_SIZE forgotten accounts keep;
  // it should take at most half of the ledger's 512 MB (README), the rest being the process and the collector's room.
  // Counting accounts alone it was ~1.6 GB (seen failing so before ACCOUNT_CACHE_REMEMBERED).
  it('keeps the worst case of busy accounts within half the ledger memory bound', () => {
    const { ACCOUNT_CACHE_SIZE, ACCOUNT_SNAPSHOT_EVERY, ACCOUNT_CACHE_REMEMBERED } = loadConfig(LedgerConfig, { DATABASE_URL: 'postgres://x@127.0.0.1/x', KAFKA_BROKERS: '127.0.0.1:9092' });
    const { perUsage, perForgottenAccount } = retainedBytes(200, 100);
    expect(perUsage).toBeGreaterThan(100); // the measurement sees the states
    const remembered = Math.min(ACCOUNT_CACHE_SIZE * (ACCOUNT_SNAPSHOT_EVERY - 1), ACCOUNT_CACHE_REMEMBERED);
    const worstCaseMb = (remembered * perUsage + ACCOUNT_CACHE_SIZE * perForgottenAccount) / 1024 / 1024;
    expect(worstCaseMb).toBeLessThanOrEqual(LEDGER_MEMORY_BOUND_MB / 2);
  });
});

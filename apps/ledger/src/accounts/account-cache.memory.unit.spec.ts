import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { decide, evolve, initialState, type AccountCommand, type AccountState } from '@tally/ledger-domain';
import type { Micro } from '@tally/money';
import { loadConfig } from '@tally/shared';
import { LedgerConfig } from '../config/ledger.config';

/** What the memory target allows the ledger (README: RSS with 1,000,000 accounts touched ≤ 512 MB). */
const LEDGER_MEMORY_BOUND_MB = 512;
const NOW = new Date('2026-03-10T12:00:00.000Z');

/** An account as the cache holds it between snapshots: a purchase, then `usages` usage events of one model each. */
function busyAccount(account: string, usages: number): AccountState {
  let state = initialState;
  const apply = (command: AccountCommand) => {
    for (const event of decide(command, state, { now: NOW })) state = evolve(state, event);
  };
  apply({ type: 'GrantCredits', accountId: account, grantId: `purchase-${account}`, kind: 'purchased', amount: 1_000_000_000_000n as Micro, source: 'purchase:pack' });
  for (let i = 0; i < usages; i++) {
    apply({
      type: 'RecordUsage', accountId: account, usageId: `${account}-usage-${i}-7f3c9a1e`, amount: 250_000n as Micro, occurredAt: NOW.toISOString(), feature: 'chat', models: ['gpt-4o'],
      pricing: { rateCardVersion: 'rc-2026-03', lines: [{ model: 'gpt-4o', feature: 'chat', amount: 250_000n as Micro, inputTokens: 1_200, outputTokens: 350 }] },
    });
  }
  return state;
}

/** Heap bytes each usage keeps in a cached state (its idempotency key and the debit a refund may name), measured. */
function retainedBytesPerUsage(accounts: number, usages: number): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().heapUsed;
  const held = Array.from({ length: accounts }, (_, i) => busyAccount(`acct-${i}`, usages));
  gc();
  const after = process.memoryUsage().heapUsed;
  expect(held.every((state) => state.debits.size === usages)).toBe(true); // keeps them alive until measured
  return (after - before) / (accounts * usages);
}

describe('the account cache with its default config', () => {
  // Each cached account remembers every usage since its last snapshot (at most ACCOUNT_SNAPSHOT_EVERY − 1); the cache
  // holds ACCOUNT_CACHE_SIZE accounts. Busy accounts each just short of their next snapshot are the worst case; the
  // cache should take at most half of the ledger's 512 MB (README), the rest being the process and the collector's room.
  // KNOWN DEFECT, not fixed yet (docs/benchmarks.md, issue 17 session 27): the worst case is ~1.6 GB. Bounding it by
  // eviction was measured and thrashes (5,000 busy accounts: 6,176 → ~600 usages/s); the fix to build is forgetting
  // the least recently used accounts' keys and debits in memory beyond a budget. `it.failing` turns red once it holds:
  // then make it a plain `it`.
  it.failing('keeps the worst case of busy accounts within half the ledger memory bound', () => {
    const { ACCOUNT_CACHE_SIZE, ACCOUNT_SNAPSHOT_EVERY } = loadConfig(LedgerConfig, { DATABASE_URL: 'postgres://x@127.0.0.1/x', KAFKA_BROKERS: '127.0.0.1:9092' });
    const perUsage = retainedBytesPerUsage(200, 100);
    expect(perUsage).toBeGreaterThan(100); // the measurement sees the states (~870 bytes a usage on Node 24)
    const worstCaseMb = (ACCOUNT_CACHE_SIZE * (ACCOUNT_SNAPSHOT_EVERY - 1) * perUsage) / 1024 / 1024;
    expect(worstCaseMb).toBeLessThanOrEqual(LEDGER_MEMORY_BOUND_MB / 2);
  });

  it('measures what a busy account remembers: hundreds of bytes a usage', () => {
    const perUsage = retainedBytesPerUsage(100, 100);
    expect(perUsage).toBeGreaterThan(300);
    expect(perUsage).toBeLessThan(3_000);
  });
});

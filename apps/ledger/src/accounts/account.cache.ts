import { LRUCache } from 'lru-cache';
import { forget } from '@tally/ledger-domain';
import type { LoadedAccount } from './account.repository';
import { accountCacheForgets } from './account.metrics';

/** What an account weighs against ACCOUNT_CACHE_REMEMBERED: itself, its idempotency keys and the debits it holds. */
export const rememberedBy = (account: LoadedAccount): number => 1 + account.state.seen.size + account.state.debits.size;

/** A pass forgets down to this share of the budget, so passes are rare (one per fifth of the budget remembered again). */
const FORGET_DOWN_TO = 0.8;

/**
 * The decided states the ledger keeps in memory, least recently used out first: at most `maxAccounts` accounts
 * (ACCOUNT_CACHE_SIZE), which together remember at most `maxRemembered` idempotency keys and debits
 * (ACCOUNT_CACHE_REMEMBERED). A busy account remembers each usage since its last snapshot (~850 bytes), so counting
 * accounts alone let 10,000 busy ones hold ~1.6 GB. Beyond the budget the least recently used accounts forget their
 * usage and hold keys and unrefunded debits in place (`forget`, as a snapshot does) rather than leave: a forgotten
 * account recalls a key from the event store when a command needs it (one indexed query per batch, what every account
 * past its first snapshot already does), where an evicted one would be folded again from its snapshot (measured: 5,000
 * busy accounts thrashed at ~600 usages/s). `canForget` is false where the store cannot look a key up (EventStoreDB,
 * snapshots off): there only the account count bounds the memory.
 */
export class AccountCache {
  private readonly lru: LRUCache<string, LoadedAccount>;
  private remembered = 0;

  constructor(
    maxAccounts: number,
    private readonly maxRemembered: number,
    private readonly canForget: boolean,
  ) {
    // Called for a value evicted, deleted or replaced by another: what it remembered leaves with it.
    this.lru = new LRUCache({ max: maxAccounts, dispose: (account) => (this.remembered -= rememberedBy(account)) });
  }

  get(accountId: string): LoadedAccount | undefined {
    return this.lru.get(accountId);
  }

  set(accountId: string, account: LoadedAccount): void {
    const replaced = this.lru.peek(accountId);
    this.lru.set(accountId, account);
    if (replaced === account) return; // the same state again (a hit): only its recency moved
    this.remembered += rememberedBy(account);
    if (this.canForget && this.remembered > this.maxRemembered) this.forgetLeastRecentlyUsed();
  }

  delete(accountId: string): void {
    this.lru.delete(accountId);
  }

  /** The keys and debits the cached accounts remember together, accounts included (what the budget counts). */
  rememberedTotal(): number {
    return this.remembered;
  }

  /**
   * Forgets, least recently used first, until the cache remembers FORGET_DOWN_TO of its budget. A forgotten state
   * replaces the cached one (a new object: a batch deciding on the old one keeps it whole) and becomes the most
   * recently used, as any `set` makes it; it weighs little either way.
   */
  private forgetLeastRecentlyUsed(): void {
    const target = Math.floor(this.maxRemembered * FORGET_DOWN_TO);
    let forgotten = 0;
    for (const accountId of [...this.lru.rkeys()]) {
      if (this.remembered <= target) break;
      const account = this.lru.peek(accountId) as LoadedAccount;
      const lighter: LoadedAccount = { ...account, state: forget(account.state) };
      if (rememberedBy(lighter) >= rememberedBy(account)) continue;
      this.lru.set(accountId, lighter);
      this.remembered += rememberedBy(lighter);
      forgotten += 1;
    }
    if (forgotten > 0) accountCacheForgets.inc(forgotten);
  }
}

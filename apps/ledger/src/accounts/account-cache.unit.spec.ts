import { stateAfterUsages } from '@tally/ledger-domain/testing';
import { AccountCache, rememberedBy, type LoadedAccount } from './account.repository';
import { accountCacheForgetPasses } from './account.metrics';

const passes = async (): Promise<number> => (await accountCacheForgetPasses.get()).values[0]?.value ?? 0;

/** A purchase, then `usages` usage events: weighs 1 + 1 key (the purchase's) + usages debits. */
const account = (id: string, usages: number): LoadedAccount => ({ state: stateAfterUsages(id, usages), version: 2 + usages });

/** The usages an account remembers: by their debits (or by their keys, once recalled). */
const usagesRemembered = (cached: LoadedAccount | undefined) => [
  ...(cached?.state.debits.keys() ?? []),
  ...[...(cached?.state.seen.keys() ?? [])].filter((key) => key.startsWith('usage:')),
];

describe('AccountCache', () => {
  it('weighs an account as itself, its keys and its debits', () => {
    expect(rememberedBy(account('a', 10))).toBe(1 + 1 + 10);
  });

  it('given accounts remembering more than the budget, when one more is cached, then the least recently used forget their usage keys and debits in place', () => {
    const cache = new AccountCache(100, 100, true);
    cache.set('a', account('a', 60)); // 62
    cache.set('b', account('b', 20)); // 22, 84 in all
    cache.get('a'); // b is now the least recently used
    cache.set('c', account('c', 20)); // 22: 106 > 100, forget until at most 80

    expect(usagesRemembered(cache.get('b'))).toEqual([]); // the least recently used forgets first: 22 → 2 (86 in all)
    expect(cache.get('b')?.state).toMatchObject({ partialMemory: true });
    expect(usagesRemembered(cache.get('a'))).toEqual([]); // then a: 62 → 2 (26 in all)
    expect(usagesRemembered(cache.get('c'))).toHaveLength(20); // the most recent keeps its memory
    expect(cache.rememberedTotal()).toBe(2 + 2 + 22);
  });

  it('keeps forgetting, least recently used first, until the cache remembers 80% of its budget, and never evicts for it', () => {
    const cache = new AccountCache(100, 100, true);
    cache.set('a', account('a', 60)); // 62
    cache.set('b', account('b', 20)); // 22
    cache.set('c', account('c', 40)); // 42: 126 > 100
    // a (least recently used) forgets: 62 → 2, 66 in all, under 80: b and c keep theirs.
    expect(usagesRemembered(cache.get('a'))).toEqual([]);
    expect(usagesRemembered(cache.get('b'))).toHaveLength(20);
    expect(usagesRemembered(cache.get('c'))).toHaveLength(40);
    expect(cache.rememberedTotal()).toBe(2 + 22 + 42);
    expect(cache.get('a')?.version).toBe(62); // the same account at the same version, only lighter
  });

  // What an account cannot forget (its cycles' and grants' keys, refunded debits) grows with its age: a year of monthly
  // cycles is ~25 keys an account. Once the cached accounts' floor alone passed the budget, every set ran a pass over
  // the whole cache that freed almost nothing: a batch of hundreds of saves scanned and copied the cache each time.
  it('given accounts whose unforgettable keys alone fill the budget, when usage keeps coming, then a pass runs once per fifth of the budget remembered again, not on every set', async () => {
    const cache = new AccountCache(1_000, 100, true);
    for (let i = 0; i < 60; i++) cache.set(`floor-${i}`, account(`floor-${i}`, 0)); // 2 each: 120, over the budget
    const before = await passes();
    // Each set one usage more on one of 50 accounts (counted again from none once the cache made it forget them).
    const usages = new Map<string, number>();
    for (let i = 1; i <= 1_000; i++) {
      const id = `busy-${i % 50}`;
      const count = cache.get(id)?.state.partialMemory ? 1 : (usages.get(id) ?? 0) + 1;
      usages.set(id, count);
      cache.set(id, account(id, count));
    }
    const ran = (await passes()) - before;
    expect(ran).toBeGreaterThan(0);
    expect(ran).toBeLessThanOrEqual(1_000 / 20 + 10); // 20: a fifth of the budget (1,000 before, one a set)
    expect(cache.rememberedTotal()).toBeLessThanOrEqual(120 + 100 + 20 * 2); // the floor, what may be remembered, the 50 busy accounts' own
  });

  it('keeps counting right through replacements, evictions by count and deletions', () => {
    const cache = new AccountCache(2, 1_000, true);
    cache.set('a', account('a', 10)); // 12
    cache.set('a', account('a', 12)); // replaced: 14
    const b = account('b', 2); // 4
    cache.set('b', b);
    cache.set('b', b); // the same state again: counted once
    expect(cache.rememberedTotal()).toBe(14 + 4);
    cache.set('c', account('c', 4)); // 6; a is evicted by count
    expect(cache.get('a')).toBeUndefined();
    expect(cache.rememberedTotal()).toBe(4 + 6);
    cache.delete('b');
    expect(cache.rememberedTotal()).toBe(6);
  });

  it('forgets nothing where the store cannot recall a key (canForget false): only the account count bounds it', () => {
    const cache = new AccountCache(100, 10, false);
    cache.set('a', account('a', 30));
    expect(usagesRemembered(cache.get('a'))).toHaveLength(30);
    expect(cache.get('a')?.state.partialMemory).toBe(false);
  });
});

/**
 * A skewed choice of accounts, as a product's usage is: a few accounts send most of it. Zipf's law with exponent s
 * over the ranks 1..n (the account of rank k is chosen with probability ∝ 1/k^s), drawn from a seeded generator so
 * two runs send the same sequence. With s = 1 and 100,000 accounts, the 10,000 busiest get about 81% of the events;
 * with 1,000,000 accounts, about 68%.
 */
import { LRUCache } from 'lru-cache';

/** The exponent the bench uses: the classic web-traffic skew. */
export const ZIPF_EXPONENT = 1;

/** The ledger's default ACCOUNT_CACHE_SIZE (apps/ledger/src/config/ledger.config.ts), unless the bench's environment sets one. */
export const LEDGER_CACHE_SIZE = Number(process.env.ACCOUNT_CACHE_SIZE ?? 10_000);

/** mulberry32: a small seeded 32-bit generator, uniform in [0, 1). */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Returns `next()`: the rank (0 = the busiest) of each next draw under Zipf's law over `ranks` ranks. */
function zipfRanks(ranks: number, s: number, seed: number): () => number {
  const cdf = new Float64Array(ranks);
  let sum = 0;
  for (let k = 0; k < ranks; k++) cdf[k] = sum += 1 / Math.pow(k + 1, s);
  const random = seededRandom(seed);
  return () => {
    const u = random() * sum;
    let lo = 0;
    let hi = ranks - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** Returns `next()`: the account of each next event, Zipf-distributed over `accounts` in their order (the first busiest). */
export function zipfPicker(accounts: readonly string[], s = ZIPF_EXPONENT, seed = 17): () => string {
  const next = zipfRanks(accounts.length, s, seed);
  return () => accounts[next()];
}

/**
 * The hit ratio an LRU cache of `cacheSize` accounts settles at under zipfPicker's law over `accounts` accounts,
 * simulated (the second half of `draws` draws, once the cache is warm). A bench run's 20 s mostly warms the cache;
 * this is what a ledger that has run for a while would see.
 */
export function simulatedLruHitRatio(accounts: number, cacheSize: number, draws = 1_000_000, s = ZIPF_EXPONENT): number {
  const next = zipfRanks(accounts, s, 29);
  const cache = new LRUCache<number, true>({ max: cacheSize });
  let hits = 0;
  for (let n = 0; n < draws; n++) {
    const account = next();
    const hit = cache.get(account) !== undefined;
    if (!hit) cache.set(account, true);
    if (hit && n >= draws / 2) hits += 1;
  }
  return hits / (draws - Math.ceil(draws / 2));
}

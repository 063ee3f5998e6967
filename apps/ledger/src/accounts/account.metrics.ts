import { LATENCY_BUCKETS_SECONDS, counter, histogram } from '@tally/metrics';

/** Loads of an account's decided state answered by the LRU cache (its version still the stream's). Hit ratio: hits / (hits + misses). */
export const accountCacheHits = counter({
  name: 'tally_ledger_account_cache_hits_total',
  help: "Account loads answered from the ledger's account cache (cached version equal to the stream's).",
});

export const accountCacheMisses = counter({
  name: 'tally_ledger_account_cache_misses_total',
  help: 'Account loads that had to read events from the event store (not cached, evicted, or behind the stream).',
});

/** Accounts whose usage and hold keys and unrefunded debits the cache forgot in place (ACCOUNT_CACHE_REMEMBERED). */
export const accountCacheForgets = counter({
  name: 'tally_ledger_account_cache_forgets_total',
  help: 'Cached accounts that forgot their usage and hold keys and unrefunded debits because the cache remembered more than ACCOUNT_CACHE_REMEMBERED.',
});

/** Passes over the account cache to forget (each scans it, least recently used first). */
export const accountCacheForgetPasses = counter({
  name: 'tally_ledger_account_cache_forget_passes_total',
  help: 'Passes over the account cache to forget usage and hold keys and debits (ACCOUNT_CACHE_REMEMBERED exceeded); each scans the cache.',
});

/** One observation per appendMany (an HTTP command, or a consumer batch's appends inside its transaction). */
export const eventStoreAppendDuration = histogram({
  name: 'tally_event_store_append_duration_seconds',
  help: "Time of one append to the event store (an HTTP command's, or a consumer batch's inside its transaction, before COMMIT), by path.",
  labelNames: ['path'],
  buckets: LATENCY_BUCKETS_SECONDS,
});

/** Times `append`, observing it under `path` whether it succeeds or fails. */
export async function timedAppend<T>(path: 'command' | 'batch', append: () => Promise<T>): Promise<T> {
  const end = eventStoreAppendDuration.startTimer({ path });
  try {
    return await append();
  } finally {
    end();
  }
}

/** Snapshots of long account streams (ACCOUNT_SNAPSHOT_EVERY), by result: written, or failed (the next load folds more). */
export const accountSnapshotWrites = counter({
  name: 'tally_ledger_account_snapshot_writes_total',
  help: 'Account snapshots written (result=written) or not (result=failed: logged; the next load folds more events; result=dropped: more than 10,000 waiting for a write, the oldest not written; the next load folds more events).',
  labelNames: ['result'],
});

/**
 * What a command on an account with a bounded memory had to recall first (ledger-domain, account-memory.model.ts):
 * outcome=new (its key was looked up and is new), recalled (found and remembered again), full (the whole stream folded).
 */
export const accountRecalls = counter({
  name: 'tally_ledger_account_recalls_total',
  help: 'Commands on accounts with a bounded memory that looked their key up (outcome=new|recalled) or folded the whole stream (outcome=full).',
  labelNames: ['outcome'],
});

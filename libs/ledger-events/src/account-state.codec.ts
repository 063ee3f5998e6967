import { Map as ImmutableMap } from 'immutable';
import type { AccountState } from '@tally/ledger-domain';

/**
 * The account state as a snapshot stores it: JSON, with the types JSON lacks tagged — a bigint as {"$b":"123"}, a
 * Map as {"$m":[[k,v],…]}, a Set as {"$s":[…]}, an immutable Map as {"$i":[[k,v],…]}. Generic over the state's shape,
 * so a field added to AccountState is stored without touching this file; what a stored snapshot means is pinned by
 * ACCOUNT_STATE_VERSION instead.
 *
 * Bump ACCOUNT_STATE_VERSION whenever AccountState, or what `evolve` folds into it, changes: snapshots of another
 * version are ignored (the account is folded from its events and snapshotted again), never decoded into a state the
 * code no longer means. The unit test pins the state's fields so a change to them fails until this is bumped.
 *
 * Version 2 keeps a debit one bucket paid in whole for one model as the two ids (ledger-domain's DebitRecord), which
 * the code of version 1 would misread. Version 3 adds the debt line (AccountState.debt, DebitRecord.tailAt: who paid
 * which carried overdraft, for refunds), which states of versions 1 and 2 lack: their snapshots are ignored, and each
 * such account is folded from its events once and snapshotted again. Version 4 remembers a grant's key with its
 * source (`grantFingerprint`), which the fingerprints of version 3 lack: a retried grant would be refused as other content.
 * Version 5 charges a cycle with what the account owed when it began (`usedThisCycle`, `Cycle.carried`), which
 * states of version 4 counted as zero. Version 6 leaves thresholds and depletion as they were across a grant that
 * arrives already expired (never spendable), which version 5 re-armed: the next usage announced them a second time.
 * Version 7 remembers a grant with the part of its reason its source does not keep (over 194 characters); a state of
 * version 6 or 5 is read with each grant it remembers marked as remembered without its reason
 * (`grantFingerprintBeforeReasons`), so that the same grant is still taken for a repeat, and a state folded from the
 * events is exact: no account is folded again for it at a deploy. Version 8 arms depletion again at a new cycle (as its
 * thresholds), which version 7 left armed only by credits coming back: an account that started a cycle owing its whole
 * allowance was announced low but never depleted in it.
 */
export const ACCOUNT_STATE_VERSION = 8;

/**
 * The versions a snapshot is read at: this one, and those whose states the code still means as they are. Version 5's
 * have the same fields and differ only for an account that was given a grant already expired while below a
 * threshold (a second announcement, as before); version 7's only for an account depleted when its current cycle
 * began (not announced depleted again until that cycle ends, as before): read as they are rather than every long
 * account folded again at its first command after a deploy (seconds for a stream of 300,000 events, its partition
 * waiting).
 */
export const READ_ACCOUNT_STATE_VERSIONS: readonly number[] = [ACCOUNT_STATE_VERSION, 7, 6, 5];

type Tagged = { $b: string } | { $m: [unknown, unknown][] } | { $s: unknown[] } | { $i: [string, unknown][] };

export function encodeAccountState(state: AccountState): string {
  return JSON.stringify(state, function replace(this: Record<string, unknown>, key: string, value: unknown): unknown {
    // `this[key]` is the value before toJSON (immutable's Map has one that drops its type).
    const original = this[key];
    if (typeof original === 'bigint') return { $b: original.toString() };
    if (ImmutableMap.isMap(original)) return { $i: [...(original as ImmutableMap<string, unknown>).entries()] };
    if (original instanceof Map) return { $m: [...original.entries()] };
    if (original instanceof Set) return { $s: [...original] };
    return value;
  });
}

/** `stateVersion`: the version it was encoded at (one of READ_ACCOUNT_STATE_VERSIONS). */
export function decodeAccountState(text: string, stateVersion = ACCOUNT_STATE_VERSION): AccountState {
  const state = parseAccountState(text);
  if (stateVersion >= 7) return state;
  // Remembered before reasons counted: marked so (see ACCOUNT_STATE_VERSION).
  return { ...state, seen: state.seen.map((fingerprint, key) => (key.startsWith('grant:') ? `${fingerprint}\u0000` : fingerprint)) };
}

function parseAccountState(text: string): AccountState {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
    const tagged = value as Tagged;
    if ('$b' in tagged) return BigInt(tagged.$b);
    if ('$i' in tagged) return ImmutableMap(tagged.$i);
    if ('$m' in tagged) return new Map(tagged.$m);
    if ('$s' in tagged) return new Set(tagged.$s);
    return value;
  }) as AccountState;
}

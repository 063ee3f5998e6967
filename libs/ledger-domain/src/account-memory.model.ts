import type { AccountCommand } from './account.commands';
import type { AccountEvent } from './account.events';
import { type AccountState, remembered } from './account.state';
import { holdFingerprint, idempotencyKey, type IdempotencyScope, usageFingerprint } from './account-idempotency.model';

/**
 * The account's memory of what it has seen, bounded. Two parts of the state grow with every usage and hold: the
 * debits a refund may name (`debits`, which also remember the usages' idempotency keys) and the keys of holds
 * (`seen`). A snapshot of a long-lived account keeps neither (`forget`): it would be megabytes, and loading it would
 * cost what folding the stream does.
 * A state that forgot (`partialMemory`) still decides exactly as the whole state would, because its caller recalls
 * what a command needs from the event store first (`recallFor` says what):
 * - a usage or hold key it does not remember (`remembered`) is looked up (also a hold's when the expiry worker
 *   releases it, so the worker can tell a hold resolved since from one not placed yet): the first event of a decision made under
 *   that key has a known id (the command key of RecordUsage and PlaceHold is their idempotency key, see
 *   `idempotencyKeyOf`); none → the key is new; found → its events give the fingerprint back into `seen`
 *   (`recallFrom`);
 * - a refund of a debit it does not hold needs the account folded from its first event ('full'), and so does
 *   replaying a refund of such a debit over a snapshot (`evolvesPartial`). Refunds of old usage are rare; a debit
 *   refunded once is never forgotten.
 * Everything else (grants, cycles, plan changes, refunds, voids, open holds) is small and kept.
 */

/** The keys a partial memory drops: the two scopes that grow with traffic (usage keys are in `seen` once recalled). */
const FORGETTABLE = ['usage:', 'hold:'];

const isForgettable = (key: string): boolean => FORGETTABLE.some((prefix) => key.startsWith(prefix));

/**
 * What a fold that forgets as it goes (a stream too long to hold whole in memory) must still hold at its end: the
 * debits a later event of the stream refunds (a refund of a forgotten debit does not fold) or a command about to be
 * decided names, and those commands' keys. With them kept, the commands decide as on the whole state.
 */
export interface Kept {
  readonly usageIds: ReadonlySet<string>;
  readonly keys: ReadonlySet<string>;
}

/**
 * The state a snapshot keeps: without the usage and hold keys, and without the debits never refunded; `kept` (a fold
 * that forgets as it goes) holds some of them on.
 */
export function forget(state: AccountState, kept?: Kept): AccountState {
  return {
    ...state,
    partialMemory: true,
    seen: state.seen.filterNot((_fingerprint, key) => isForgettable(key) && kept?.keys.has(key) !== true),
    debits: state.debits.filter((debit, usageId) => debit.refunded > 0n || kept?.usageIds.has(usageId) === true),
  };
}

/** What a forgetting fold must keep for `commands` to be decided on its state, and for `refunded` to fold (see Kept). */
export function keptFor(commands: readonly AccountCommand[], refunded: Iterable<string>): Kept {
  const usageIds = new Set(refunded);
  const keys = new Set<string>();
  for (const command of commands) {
    if (command.type === 'RecordUsage' || command.type === 'RefundUsage') usageIds.add(command.usageId);
    const key = idempotencyKeyOf(command) ?? (command.type === 'ReleaseHold' ? idempotencyKey('hold', command.holdId) : undefined);
    if (key !== undefined) keys.add(key);
  }
  return { usageIds, keys };
}

/** The usages these events refund (what a fold of a stream that forgets as it goes must keep the debits of). */
export function refundedUsages(events: Iterable<AccountEvent>): Set<string> {
  const refunded = new Set<string>();
  for (const event of events) if (event.type === 'UsageRefunded') refunded.add(event.data.usageId);
  return refunded;
}

/** What the caller must recall before `decide` on this state. */
export type Recall = { kind: 'none' } | { kind: 'lookup'; key: string } | { kind: 'full' };

const NONE: Recall = { kind: 'none' };

/** The idempotency key of a command whose command key is that key (RecordUsage, PlaceHold); undefined for others. */
export function idempotencyKeyOf(command: AccountCommand): string | undefined {
  if (command.type === 'RecordUsage') return idempotencyKey('usage', command.usageId);
  if (command.type === 'PlaceHold') return idempotencyKey('hold', command.holdId);
  return undefined;
}

export function recallFor(state: AccountState, command: AccountCommand): Recall {
  if (!state.partialMemory) return NONE;
  switch (command.type) {
    case 'RefundUsage':
      return state.debits.has(command.usageId) ? NONE : { kind: 'full' };
    case 'RecordUsage':
      return lookupUnlessRemembered(state, 'usage', command.usageId);
    case 'PlaceHold':
      return lookupUnlessRemembered(state, 'hold', command.holdId);
    // Decided alike either way; recalled so the expiry worker can tell a hold resolved since from one not yet placed.
    case 'ReleaseHold':
      return command.reason === 'expired' ? lookupUnlessRemembered(state, 'hold', command.holdId) : NONE;
    default:
      return NONE;
  }
}

const lookupUnlessRemembered = (state: AccountState, scope: IdempotencyScope, id: string): Recall =>
  remembered(state, scope, id) === undefined ? { kind: 'lookup', key: idempotencyKey(scope, id) } : NONE;

/**
 * The state with `key` remembered again from the events of the decision first made under it; undefined when none of
 * them carries it (the caller then folds the whole account).
 */
export function recallFrom(state: AccountState, key: string, decision: readonly AccountEvent[]): AccountState | undefined {
  for (const event of decision) {
    if (event.type === 'UsageDebited' && idempotencyKey('usage', event.data.usageId) === key) {
      return { ...state, seen: state.seen.set(key, usageFingerprint(event.data)) };
    }
    if (event.type === 'HoldPlaced' && idempotencyKey('hold', event.data.holdId) === key) {
      return { ...state, seen: state.seen.set(key, holdFingerprint(event.data)) };
    }
  }
  return undefined;
}

/** Whether `evolve` on this state gives what it gives on the whole state: not for a refund of a forgotten debit. */
export function evolvesPartial(state: AccountState, event: AccountEvent): boolean {
  return !state.partialMemory || event.type !== 'UsageRefunded' || state.debits.has(event.data.usageId);
}

import type { AccountCommand } from '../account.commands';
import type { AccountEvent } from '../account.events';
import { idempotencyKeyOf, recallFor, recallFrom } from '../account-memory.model';
import type { AccountState } from '../account.state';

/**
 * What the ledger's AccountRepository recalls before deciding on a state that forgot (account-memory.model.ts), over
 * an in-memory history instead of the event store: a forgotten key from the first decision made under it, and the
 * whole state (`whole`, never forgotten) where the repository folds the whole stream.
 */
export function recallFromHistory(
  state: AccountState,
  command: AccountCommand,
  history: readonly { command: AccountCommand; events: readonly AccountEvent[] }[],
  whole: AccountState,
): AccountState {
  const recall = recallFor(state, command);
  if (recall.kind === 'full') return whole;
  if (recall.kind === 'lookup') {
    const first = history.find((earlier) => idempotencyKeyOf(earlier.command) === recall.key && earlier.events.length > 0);
    if (first) return recallFrom(state, recall.key, first.events) ?? whole;
  }
  return state;
}

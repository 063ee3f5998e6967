import type { BalanceSnapshotV1 } from '@tally/contracts';
import type { RecordedEvent } from '@tally/event-store';
import { balanceView, evolve, initialState, type AccountState } from '@tally/ledger-domain';
import { decodeEvent, snapshotOf } from './account-event.codec';

/**
 * An account as it was at an instant, folded from its stored stream by the domain's own `evolve`: the longest prefix
 * of the stream recorded at or before `at` (recorded_at is a transaction's start time, so a later version can carry
 * an earlier time; folding around it would give a state that never was), and its balance viewed at `at` (what had
 * expired by then is not available). The same rule as the ledger's `GET /balance?at=` (AccountRepository.loadAsOf).
 */
export function accountAsOf(stream: readonly RecordedEvent[], at: Date): { state: AccountState; version: number; balance: BalanceSnapshotV1 } {
  const end = stream.findIndex((stored) => stored.recordedAt.getTime() > at.getTime());
  let state = initialState;
  let version = 0;
  for (const stored of end === -1 ? stream : stream.slice(0, end)) {
    state = evolve(state, decodeEvent(stored));
    version = stored.version;
  }
  return { state, version, balance: snapshotOf(balanceView(state, at)) };
}

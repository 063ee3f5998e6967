import fc from 'fast-check';
import { type AccountState, balanceView, forget, initialState } from '@tally/ledger-domain';
import { accountHistory, play } from '@tally/ledger-domain/testing';
import { ACCOUNT_STATE_VERSION, decodeAccountState, encodeAccountState } from './account-state.codec';

/** The state with its immutable maps as plain objects, for a deep comparison that ignores their inner layout. */
const plain = (state: AccountState) => ({
  ...state,
  seen: state.seen.toJS(),
  grants: state.grants.toJS(),
  debits: state.debits.toJS(),
  corrections: state.corrections.toJS(),
});

describe('account state codec (snapshots)', () => {
  it('given any history, when its state (whole or forgotten) is encoded and decoded, then it is the same state', () => {
    fc.assert(
      fc.property(accountHistory, (ops) => {
        const { state, now } = play(ops);
        for (const original of [state, forget(state)]) {
          const decoded = decodeAccountState(encodeAccountState(original));
          expect(plain(decoded)).toEqual(plain(original));
          expect(balanceView(decoded, now)).toEqual(balanceView(original, now));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('keeps the types JSON lacks: bigints, Maps, Sets and immutable Maps', () => {
    const decoded = decodeAccountState(encodeAccountState(initialState));
    expect(decoded.overdraft).toBe(0n);
    expect(decoded.holds).toBeInstanceOf(Map);
    expect(decoded.crossedThresholds).toBeInstanceOf(Set);
    expect(decoded.seen.set('k', 'v').get('k')).toBe('v');
  });

  it(`pins the state's fields at version ${ACCOUNT_STATE_VERSION}: a change to AccountState must bump ACCOUNT_STATE_VERSION, then this list`, () => {
    expect(ACCOUNT_STATE_VERSION).toBe(1);
    expect(Object.keys(initialState).sort()).toEqual([
      'buckets', 'corrections', 'crossedThresholds', 'debits', 'depleted', 'exists', 'grants', 'holds', 'overdraft',
      'partialMemory', 'plan', 'seen', 'usedThisCycle',
    ]);
  });
});

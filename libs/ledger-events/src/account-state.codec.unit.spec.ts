import fc from 'fast-check';
import { type AccountState, balanceView, debitLines, debitShares, decide, forget, initialState, isAccountError } from '@tally/ledger-domain';
import { ACCOUNT, accountHistory, play } from '@tally/ledger-domain/testing';
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

  // A debit is kept as its two lists (version 1's form) or, one bucket paid in whole for one model, as the two ids:
  // either form must decide the same.
  it('given any history, when its state is written with every debit in the list form and read back, then every refund decides the same', () => {
    fc.assert(
      fc.property(accountHistory, (ops) => {
        const { state, now } = play(ops);
        const asVersion1 = decodeAccountState(encodeAccountState({
          ...state,
          debits: state.debits.map((debit) => ({ ...debit, perBucket: debitShares(state, debit), lines: debitLines(debit) })),
        }));
        const outcome = (from: AccountState, usageId: string) => {
          const command = { type: 'RefundUsage' as const, accountId: ACCOUNT, refundId: `refund:${usageId}`, usageId, reason: 'check', restoreExpired: false };
          try {
            return decide(command, from, { now });
          } catch (error) {
            if (isAccountError(error)) return error.code;
            throw error;
          }
        };
        for (const usageId of state.debits.keys()) expect(outcome(asVersion1, usageId)).toEqual(outcome(state, usageId));
        expect(balanceView(asVersion1, now)).toEqual(balanceView(state, now));
      }),
      { numRuns: 100 },
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
    expect(ACCOUNT_STATE_VERSION).toBe(5);
    expect(Object.keys(initialState).sort()).toEqual([
      'buckets', 'corrections', 'crossedThresholds', 'debits', 'debt', 'depleted', 'exists', 'grants', 'holds', 'overdraft',
      'partialMemory', 'plan', 'seen', 'usedThisCycle',
    ]);
  });
});

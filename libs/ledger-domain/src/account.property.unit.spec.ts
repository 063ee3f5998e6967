import fc from 'fast-check';
import type { AccountEvent } from './account.events';
import { balanceView } from './account-balance.view';
import { decideWithStates } from './account.decider';
import { available, evolve, fold, held, initialState, isBelowThreshold, thresholdLevel } from './account.state';
import { accountHistory, play } from './testing/account-histories.fixtures';

const sum = (values: Iterable<bigint>) => [...values].reduce((a, b) => a + b, 0n);
const ofType = <T extends AccountEvent['type']>(events: AccountEvent[], type: T) =>
  events.filter((e): e is Extract<AccountEvent, { type: T }> => e.type === type);

describe('account decider properties', () => {
  it('given any history, when each step is decided with its states, then they are the events folded one by one and the events are what decide returns', () => {
    fc.assert(
      fc.property(accountHistory, (ops) => {
        let state = initialState;
        for (const step of play(ops).steps) {
          const { events, states } = decideWithStates(step.command, state, { now: step.now });
          expect(events).toEqual(step.events);
          expect(states).toHaveLength(events.length);
          events.forEach((event, index) => {
            state = evolve(state, event);
            expect(states[index]).toEqual(state);
          });
        }
      }),
      { numRuns: 200 },
    );
  });

  it('conserves credits: granted + refunded = available + held + debited from buckets + expired + voided, and nothing goes negative', () => {
    fc.assert(
      fc.property(accountHistory, (ops) => {
        const { events, state, now } = play(ops);
        const granted = sum(ofType(events, 'CreditsGranted').map((e) => e.data.amount));
        const debited = sum(ofType(events, 'UsageDebited').flatMap((e) => e.data.perBucket.map((s) => s.amount)));
        const expired = sum(ofType(events, 'CreditsExpired').map((e) => e.data.amount));
        const reserved = sum([...state.holds.values()].flatMap((h) => h.perBucket.map((s) => s.amount)));
        const refunds = ofType(events, 'UsageRefunded');
        const refundedToBuckets = sum(refunds.map((e) => sum(e.data.restored.map((s) => s.amount)) + (e.data.reissued?.amount ?? 0n)));
        const voided = sum(ofType(events, 'GrantVoided').map((e) => e.data.amount));
        // Credits a hold gave back that paid overdraft (OverdraftSettled fromBucket) left their bucket.
        const repaid = sum(ofType(events, 'OverdraftSettled').filter((e) => e.data.fromBucket).map((e) => e.data.amount));
        expect(granted + refundedToBuckets).toBe(available(state) + reserved + debited + expired + voided + repaid);

        // A refund's parts add up to it; a debit is never refunded beyond its amount.
        for (const { data } of refunds) {
          const parts = sum([...data.restored, ...data.forfeited].map((s) => s.amount)) + (data.reissued?.amount ?? 0n) + data.overdraftReduced + data.uncharged;
          expect(parts).toBe(data.amount);
        }
        for (const { data } of ofType(events, 'UsageDebited')) {
          expect(sum(refunds.filter((e) => e.data.usageId === data.usageId).map((e) => e.data.amount)) <= data.amount).toBe(true);
        }

        expect(state.buckets.every((b) => b.amount >= 0n)).toBe(true);
        expect(available(state)).toBeGreaterThanOrEqual(0n);
        expect(held(state)).toBeGreaterThanOrEqual(0n);

        // Overdraft carried = incurred - settled - reduced by refunds; a grant's gross amount = what its bucket got + what it settled.
        const incurred = sum(ofType(events, 'OverdraftIncurred').map((e) => e.data.amount));
        const settled = sum(ofType(events, 'OverdraftSettled').map((e) => e.data.amount));
        expect(state.overdraft).toBe(incurred - settled - sum(refunds.map((e) => e.data.overdraftReduced)));
        expect(state.overdraft).toBeGreaterThanOrEqual(0n);
        expect(settled - repaid).toBe(sum(ofType(events, 'CreditsGranted').map((e) => e.data.overdraftSettled ?? 0n)));

        // Every usage is accounted for in full: from buckets or as overdraft (unlimited: neither).
        for (const { data } of ofType(events, 'UsageDebited')) {
          const fromBuckets = sum(data.perBucket.map((s) => s.amount));
          expect(fromBuckets + data.overdraft === data.amount || (data.perBucket.length === 0 && data.overdraft === 0n)).toBe(true);
        }

        // Each usage id is debited at most once; replaying the events rebuilds the same state.
        const usageIds = ofType(events, 'UsageDebited').map((e) => e.data.usageId);
        expect(new Set(usageIds).size).toBe(usageIds.length);
        expect(fold(events)).toEqual(state);

        const view = balanceView(state, now);
        expect(view.available).toBe(view.byKind.allowance + view.byKind.promotional + view.byKind.purchased);
        expect(view.available).toBeGreaterThanOrEqual(0n);
      }),
      { numRuns: 300 },
    );
  });

  it('announces a threshold when the credits left with what holds reserve are below it, and again in a cycle only after they were back at or above it since', () => {
    fc.assert(
      fc.property(accountHistory, (ops) => {
        let state = initialState;
        // Per [cycle, percent] announced: whether the credits left have been at or above it since (credits came back).
        const announced = new Map<string, { percent: number; lifted: boolean }>();
        for (const step of play(ops).steps) {
          // The credits left as this decision judges them (thresholdLevel), at its instant.
          const level = () => thresholdLevel(state, step.now);
          for (const event of step.events) {
            state = evolve(state, event);
            if (event.type === 'CycleStarted') announced.clear();
            if (event.type === 'LowCreditThresholdCrossed') {
              expect(isBelowThreshold(level(), event.data.thresholdPercent, event.data.allocation)).toBe(true); // a hold alone never announces
              const key = JSON.stringify([event.data.cycleId, event.data.thresholdPercent]);
              expect(announced.get(key)?.lifted ?? true).toBe(true);
              announced.set(key, { percent: event.data.thresholdPercent, lifted: false });
              continue;
            }
            for (const seen of announced.values()) {
              if (!isBelowThreshold(level(), seen.percent, state.cycle?.allocation ?? 0n)) seen.lifted = true;
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

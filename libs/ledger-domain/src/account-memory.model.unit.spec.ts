import fc from 'fast-check';
import type { AccountCommand } from './account.commands';
import { decide } from './account.decider';
import { AccountError } from './account.errors';
import type { AccountEvent } from './account.events';
import { balanceView } from './account-balance.view';
import { evolvesPartial, forget, idempotencyKeyOf, keptFor, recallFor, recallFrom, refundedUsages } from './account-memory.model';
import { type AccountState, evolve, fold } from './account.state';
import { accountHistory, play, type PlayedStep } from './testing/account-histories.fixtures';
import { recallFromHistory } from './testing/account-memory.fixtures';
import { ACCOUNT, NOW, cr, debited, grantCommand, granted, holdCommand, opened, share, usageCommand } from './testing/account.fixtures';

const history: AccountEvent[] = [
  opened,
  granted('g1', 'purchased', cr(10)),
  debited('u1', cr(1), [share('g1', 'purchased', cr(1))]),
  debited('u2', cr(2), [share('g1', 'purchased', cr(2))]),
  { type: 'HoldPlaced', data: { holdId: 'h1', amount: cr(1), perBucket: [share('g1', 'purchased', cr(1))], expiresAt: '2025-03-10T12:05:00.000Z' } },
];
const refund = (usageId: string): AccountCommand => ({ type: 'RefundUsage', accountId: ACCOUNT, refundId: `refund:${usageId}`, usageId, reason: 'test', restoreExpired: false });

describe('account memory', () => {
  describe('forget: what a snapshot keeps', () => {
    it('given usage, holds and a grant, when forgotten, then only the grant key and the refunded debits stay, and the balance is the same', () => {
      const whole = fold(history);
      const partial = forget(whole);
      expect(partial.partialMemory).toBe(true);
      expect([...partial.seen.keys()]).toEqual(['grant:g1']);
      expect(partial.debits.size).toBe(0);
      expect(balanceView(partial, NOW)).toEqual(balanceView(whole, NOW));
      expect(partial.holds).toBe(whole.holds);
    });

    it('given a debit refunded once, when forgotten, then that debit is kept (a later refund must know what is left of it)', () => {
      const refunded = decide(refund('u1'), fold(history), { now: NOW });
      const partial = forget(fold(refunded, fold(history)));
      expect([...partial.debits.keys()]).toEqual(['u1']);
    });
  });

  describe('forget with what a fold that forgets as it goes must keep (keptFor)', () => {
    it('given a later refund of u2 and a command that repeats hold h1, when forgotten, then u2\'s debit and h1\'s key stay, and the command needs no recall', () => {
      const later = [...history, ...decide(refund('u2'), fold(history), { now: NOW })];
      const kept = keptFor([holdCommand('h1', cr(1))], refundedUsages(later));
      expect(kept).toEqual({ usageIds: new Set(['u2']), keys: new Set(['hold:h1']) });
      const partial = forget(fold(history), kept);
      expect([...partial.debits.keys()]).toEqual(['u2']);
      expect([...partial.seen.keys()].sort()).toEqual(['grant:g1', 'hold:h1']);
      expect(evolvesPartial(partial, later.at(-1) as AccountEvent)).toBe(true);
      expect(recallFor(partial, holdCommand('h1', cr(1)))).toEqual({ kind: 'none' });
    });

    it('given usage and refund commands, then their usages are kept, and a usage key with them', () => {
      expect(keptFor([usageCommand('u9', cr(1)), refund('u1')], [])).toEqual({ usageIds: new Set(['u9', 'u1']), keys: new Set(['usage:u9']) });
    });
  });

  describe('recallFor: what must be recalled before deciding', () => {
    const partial = forget(fold(history));

    it('given a whole memory, then nothing', () => {
      expect(recallFor(fold(history), usageCommand('u1', cr(1)))).toEqual({ kind: 'none' });
    });

    it('given a partial memory, when a usage or a hold comes, then its key is looked up', () => {
      expect(recallFor(partial, usageCommand('u9', cr(1)))).toEqual({ kind: 'lookup', key: 'usage:u9' });
      expect(recallFor(partial, holdCommand('h9', cr(1)))).toEqual({ kind: 'lookup', key: 'hold:h9' });
    });

    // The expiry worker tells a hold resolved since (its key known: the row is done) from one whose append has not
    // committed yet (unknown: looked at again); a partial memory must not make every resolved hold look unknown.
    it('given a partial memory, when a hold is released as expired, then its key is looked up; released by a caller, nothing', () => {
      const release = (reason: 'expired' | 'released') => ({ type: 'ReleaseHold' as const, accountId: ACCOUNT, holdId: 'h9', reason });
      expect(recallFor(partial, release('expired'))).toEqual({ kind: 'lookup', key: 'hold:h9' });
      expect(recallFor(partial, release('released'))).toEqual({ kind: 'none' });
    });

    it('given a partial memory, when a refund names a forgotten debit, then the whole account is needed', () => {
      expect(recallFor(partial, refund('u1'))).toEqual({ kind: 'full' });
    });

    it('given a partial memory, when a grant comes, then nothing (grant keys are kept)', () => {
      expect(recallFor(partial, grantCommand('g1', 'purchased', cr(10)))).toEqual({ kind: 'none' });
    });

    it('names the idempotency key of the commands whose command key it is', () => {
      expect(idempotencyKeyOf(usageCommand('u1', cr(1)))).toBe('usage:u1');
      expect(idempotencyKeyOf(holdCommand('h1', cr(1)))).toBe('hold:h1');
      expect(idempotencyKeyOf(grantCommand('g1', 'purchased', cr(1)))).toBeUndefined();
    });
  });

  describe('recallFrom: a key found in the store', () => {
    const partial = forget(fold(history));

    it('given the decision that first used the key, when recalled, then a repeat is a no-op and other content a conflict, as on the whole memory', () => {
      const recalled = recallFrom(partial, 'usage:u1', [history[2]]) as AccountState;
      expect(decide(usageCommand('u1', cr(1)), recalled, { now: NOW })).toEqual([]);
      expect(() => decide(usageCommand('u1', cr(3)), recalled, { now: NOW })).toThrow(AccountError);
      const hold = recallFrom(partial, 'hold:h1', [history[4]]) as AccountState;
      expect(decide(holdCommand('h1', cr(1)), hold, { now: NOW })).toEqual([]);
    });

    it('given events that do not carry the key, then undefined (the caller folds the whole account)', () => {
      expect(recallFrom(partial, 'usage:u1', [history[0], history[1]])).toBeUndefined();
    });
  });

  describe('evolvesPartial', () => {
    it('given a partial memory, then a refund of a forgotten debit cannot be replayed on it; anything else can', () => {
      const whole = fold(history);
      const [refunded] = decide(refund('u1'), whole, { now: NOW }).filter((e) => e.type === 'UsageRefunded');
      expect(evolvesPartial(forget(whole), refunded)).toBe(false);
      expect(evolvesPartial(whole, refunded)).toBe(true);
      expect(evolvesPartial(forget(whole), history[2])).toBe(true);
    });
  });

  const outcome = (command: AccountCommand, state: AccountState, now: Date): AccountEvent[] | string => {
    try {
      return decide(command, state, { now });
    } catch (error) {
      if (error instanceof AccountError) return error.code;
      throw error;
    }
  };

  it('given any history forgotten at any points, when each later command is decided after recalling, then every decision and balance is the whole memory’s', () => {
    fc.assert(
      fc.property(accountHistory, fc.array(fc.nat(80), { maxLength: 4 }), (ops, forgetAt) => {
        const { steps } = play(ops);
        let whole = fold([]);
        let partial = whole;
        steps.forEach((step, index) => {
          if (forgetAt.includes(index)) partial = forget(partial);
          partial = recallFromHistory(partial, step.command, steps.slice(0, index), whole);
          expect(outcome(step.command, partial, step.now)).toEqual(step.events);
          whole = fold(step.events, whole);
          partial = step.events.every((event) => evolvesPartial(partial, event)) ? fold(step.events, partial) : whole;
          expect(balanceView(partial, step.now)).toEqual(balanceView(whole, step.now));
          // The same command again (a redelivery) after a snapshot is answered alike: a no-op, or the same refusal.
          const again = recallFromHistory(forget(partial), step.command, steps.slice(0, index + 1), whole);
          expect(outcome(step.command, again, step.now)).toEqual(outcome(step.command, whole, step.now));
        });
      }),
      { numRuns: 300 },
    );
  });

  it('given any history, when its events are replayed over a snapshot taken at any point, then the state decides as the whole one or asks for the whole stream', () => {
    fc.assert(
      fc.property(accountHistory, fc.nat(200), (ops, cut) => {
        const { events, state: whole, now, steps } = play(ops);
        const at = events.length === 0 ? 0 : cut % events.length;
        let replayed: AccountState | undefined = forget(fold(events.slice(0, at)));
        for (const event of events.slice(at)) {
          if (!evolvesPartial(replayed, event)) {
            replayed = undefined;
            break;
          }
          replayed = evolve(replayed, event);
        }
        if (replayed === undefined) return; // the repository folds the whole stream
        expect(balanceView(replayed, now)).toEqual(balanceView(whole, now));
        // Every command of the history decided again on the replayed state (after recalling) is answered as on the whole one.
        for (const step of steps) {
          const recalled = recallFromHistory(replayed, step.command, steps, whole);
          expect(outcome(step.command, recalled, now)).toEqual(outcome(step.command, whole, now));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('given a state that was forgotten, then usage keys the history used again are still refused with other content', () => {
    const whole = fold(history);
    const step: PlayedStep = { command: usageCommand('u2', cr(2)), now: NOW, events: [history[3]] };
    const recalled = recallFromHistory(forget(whole), usageCommand('u2', cr(5)), [step], whole);
    expect(outcome(usageCommand('u2', cr(5)), recalled, NOW)).toBe('IDEMPOTENCY_CONFLICT');
  });
});

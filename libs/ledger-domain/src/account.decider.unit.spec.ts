import { MAX_AMOUNT_MICROS, MAX_BALANCE_MICROS } from '@tally/money';
import { accountDecider, decide } from './account.decider';
import type { AccountCommand } from './account.commands';
import { AccountError, InsufficientCreditsError } from './account.errors';
import { balanceView, openHold } from './account-balance.view';
import { evolve, fold, initialState, remembered, rememberedGrant } from './account.state';
import { grantFingerprintBeforeReasons } from './account-idempotency.model';
import { spec } from '@tally/decider/testing';
import {
  ACCOUNT,
  AT,
  CYCLE_END,
  CYCLE_START,
  NOW,
  cr,
  cycleStarted,
  cycleWithAllowance,
  debited,
  grantCommand,
  granted,
  holdCommand,
  opened,
  share,
  startCycleCommand,
  usageCommand,
} from './testing/account.fixtures';

const { given } = spec(accountDecider, { now: NOW });
const at = (iso: string) => ({ now: new Date(iso) });

describe('account decider', () => {
  describe('rule 1: the first command opens the account', () => {
    it('starts from a state that does not exist', () => {
      expect(initialState.exists).toBe(false);
      expect(fold([opened]).exists).toBe(true);
    });

    it('emits AccountOpened before the events of a grant', () => {
      given([])
        .when(grantCommand('g1', 'purchased', cr(10)))
        .then([{ type: 'AccountOpened', data: { accountId: ACCOUNT, openedAt: AT } }, granted('g1', 'purchased', cr(10))]);
    });

    it('opens the account on a usage event never seen before: the usage becomes overdraft, never dropped', () => {
      given([])
        .when(usageCommand('u1', cr(2)))
        .then([
          { type: 'AccountOpened', data: { accountId: ACCOUNT, openedAt: AT } },
          debited('u1', cr(2), [], { overdraft: cr(2) }),
          { type: 'OverdraftIncurred', data: { usageId: 'u1', amount: cr(2), total: cr(2) } },
          { type: 'CreditsDepleted', data: { usageId: 'u1' } },
        ]);
    });

    it('does not open an existing account again', () => {
      given([opened]).when(grantCommand('g1', 'purchased', cr(10))).then([granted('g1', 'purchased', cr(10))]);
    });

    it('refuses a command addressed to another account', () => {
      given([opened])
        .when({ ...grantCommand('g1', 'purchased', cr(10)), accountId: 'acc-2' })
        .thenThrows('INVALID_COMMAND');
    });

    it('does not open an account for housekeeping or for releasing a hold it never had', () => {
      given([]).when({ type: 'ExpireCredits', accountId: ACCOUNT }).then([]);
      given([]).when({ type: 'ReleaseHold', accountId: ACCOUNT, holdId: 'h1', reason: 'released' }).then([]);
    });
  });

  describe('rule 2: deduction order', () => {
    it('takes soonest expiry first, then promotional without expiry, then purchased', () => {
      given([
        opened,
        granted('purchased-1', 'purchased', cr(10)),
        granted('promo-forever', 'promotional', cr(10)),
        ...cycleWithAllowance('c1', cr(10)),
        granted('promo-apr', 'promotional', cr(10), { expiresAt: '2025-04-15T00:00:00.000Z' }),
        granted('promo-mar', 'promotional', cr(10), { expiresAt: '2025-03-20T00:00:00.000Z' }),
      ])
        .when(usageCommand('u1', cr(45)))
        .then([
          debited('u1', cr(45), [
            share('promo-mar', 'promotional', cr(10)),
            share('allowance:c1', 'allowance', cr(10)),
            share('promo-apr', 'promotional', cr(10)),
            share('promo-forever', 'promotional', cr(10)),
            share('purchased-1', 'purchased', cr(5)),
          ]),
        ]);
    });

    it('breaks ties by grant order', () => {
      const expiresAt = '2025-03-20T00:00:00.000Z';
      given([
        opened,
        granted('p1', 'purchased', cr(1)),
        granted('p2', 'purchased', cr(1)),
        granted('e1', 'promotional', cr(1), { expiresAt }),
        granted('e2', 'allowance', cr(1), { expiresAt }),
      ])
        .when(usageCommand('u1', cr(3)))
        .then([
          debited('u1', cr(3), [
            share('e1', 'promotional', cr(1)),
            share('e2', 'allowance', cr(1)),
            share('p1', 'purchased', cr(1)),
          ]),
        ]);
    });

    it('StartCycle creates the allowance bucket allowance:<cycleId> expiring at periodEnd', () => {
      const state = fold([opened, ...cycleWithAllowance('c1', cr(100))]);
      expect(state.buckets).toEqual([{ bucketId: 'allowance:c1', kind: 'allowance', amount: cr(100), expiresAt: CYCLE_END }]);
    });
  });

  describe('rule 3: idempotency keys', () => {
    const history = [opened, granted('g1', 'purchased', cr(10)), debited('u1', cr(1), [share('g1', 'purchased', cr(1))])];

    it('ignores a repeated usage with the same amount and refuses one with another amount', () => {
      given(history).when(usageCommand('u1', cr(1))).then([]);
      given(history).when(usageCommand('u1', cr(2))).thenThrows('IDEMPOTENCY_CONFLICT');
    });

    it('ignores a repeated grant and refuses the same grant id with other kind, amount or expiry', () => {
      given(history).when(grantCommand('g1', 'purchased', cr(10))).then([]);
      given(history).when(grantCommand('g1', 'purchased', cr(11))).thenThrows('IDEMPOTENCY_CONFLICT');
      given(history).when(grantCommand('g1', 'promotional', cr(10))).thenThrows('IDEMPOTENCY_CONFLICT');
      given(history)
        .when(grantCommand('g1', 'purchased', cr(10), { expiresAt: CYCLE_END }))
        .thenThrows('IDEMPOTENCY_CONFLICT');
    });

    it('refuses the same grant id with another source: another pack, or a promotion with another reason', () => {
      given(history).when(grantCommand('g1', 'purchased', cr(10), { source: 'pack:other' })).thenThrows('IDEMPOTENCY_CONFLICT');
      given(history).when(grantCommand('g1', 'purchased', cr(10), { source: 'test:g1' })).then([]);
    });

    it('refuses the same promotion with another reason that differs only beyond what its source keeps (194 characters)', () => {
      const reason = `${'r'.repeat(194)} first`;
      const promo = (why: string) => ({ source: `promo:${why.slice(0, 194)}`, reason: why });
      const first = [opened, granted('g1', 'promotional', cr(10), promo(reason))];
      given(first).when(grantCommand('g1', 'promotional', cr(10), promo(reason))).then([]);
      given(first).when(grantCommand('g1', 'promotional', cr(10), promo(`${'r'.repeat(194)} second`))).thenThrows('IDEMPOTENCY_CONFLICT');
      // A short reason is all in the source, as before.
      given([opened, granted('g2', 'promotional', cr(10), promo('welcome'))]).when(grantCommand('g2', 'promotional', cr(10), promo('welcome'))).then([]);
    });

    it('a grant remembered without its reason (a state snapshotted before reasons counted) is still repeated, not refused', () => {
      const reason = `${'r'.repeat(194)} first`;
      const command = grantCommand('g1', 'promotional', cr(10), { source: `promo:${reason.slice(0, 194)}`, reason });
      const state = fold([opened]);
      const before = { ...state, seen: state.seen.set('grant:g1', grantFingerprintBeforeReasons(command)) };
      expect(decide(command, before, { now: NOW })).toEqual([]);
    });

    it('a reason of exactly 194 characters, all in the source, and a longer one that starts with it are other content', () => {
      const first = 'r'.repeat(194);
      const promo = (why: string) => ({ source: `promo:${why.slice(0, 194)}`, reason: why });
      given([opened, granted('g1', 'promotional', cr(10), promo(first))])
        .when(grantCommand('g1', 'promotional', cr(10), promo(`${first} and more`)))
        .thenThrows('IDEMPOTENCY_CONFLICT');
    });

    it('a grant that arrives already expired pays no overdraft: credits never spendable settle no debt', () => {
      const yesterday = '2025-03-09T12:00:00.000Z';
      given([opened, debited('u0', cr(40), [], { overdraft: cr(40) }), overdraftIncurred('u0', cr(40), cr(40))])
        .when(grantCommand('g1', 'promotional', cr(100), { expiresAt: yesterday }))
        .then([
          granted('g1', 'promotional', cr(100), { expiresAt: yesterday }),
          { type: 'CreditsExpired', data: { bucketId: 'g1', kind: 'promotional', amount: cr(100), reason: 'expired', expiredAt: AT } },
        ]);
    });

    it('recognises a repeated grant whose first delivery paid overdraft', () => {
      const { state } = given([opened, debited('u0', cr(3), [], { overdraft: cr(3) }), overdraftIncurred('u0', cr(3), cr(3))])
        .when(grantCommand('g1', 'purchased', cr(10)))
        .then([
          { type: 'OverdraftSettled', data: { grantId: 'g1', amount: cr(3), remaining: 0n } },
          granted('g1', 'purchased', cr(7), { overdraftSettled: cr(3) }),
        ]);
      expect(decide(grantCommand('g1', 'purchased', cr(10)), state, { now: NOW })).toEqual([]);
    });

    it('ignores a repeated StartCycle and refuses the same cycle id with other terms', () => {
      const h = [opened, ...cycleWithAllowance('c1', cr(100))];
      given(h).when(startCycleCommand('c1', cr(100))).then([]);
      given(h).when(startCycleCommand('c1', cr(200))).thenThrows('IDEMPOTENCY_CONFLICT');
    });

    it('ignores a repeated PlaceHold and refuses the same hold id with another amount', () => {
      const h = [...history, { type: 'HoldPlaced' as const, data: { holdId: 'h1', amount: cr(2), perBucket: [share('g1', 'purchased', cr(2))], expiresAt: '2025-03-10T12:05:00.000Z' } }];
      given(h).when(holdCommand('h1', cr(2))).then([]);
      given(h).when(holdCommand('h1', cr(3))).thenThrows('IDEMPOTENCY_CONFLICT');
    });

    it('knows a repeated hold that is no longer open (released, or due though not yet released): it reserves nothing', () => {
      const placed = { type: 'HoldPlaced' as const, data: { holdId: 'h1', amount: cr(2), perBucket: [share('g1', 'purchased', cr(2))], expiresAt: '2025-03-10T12:05:00.000Z' } };
      const released = { type: 'HoldReleased' as const, data: { holdId: 'h1', amount: cr(2), reason: 'released' as const } };
      expect(openHold(fold([...history, placed]), 'h1', new Date('2025-03-10T12:04:59.999Z'))).toMatchObject({ amount: cr(2) });
      expect(openHold(fold([...history, placed]), 'h1', new Date('2025-03-10T12:05:00.000Z'))).toBeUndefined();
      expect(openHold(fold([...history, placed, released]), 'h1', NOW)).toBeUndefined();
      given([...history, placed, released]).when(holdCommand('h1', cr(2))).then([]);
    });

    it('ignores a repeated ChangePlan and refuses the same change id with other terms', () => {
      const change: AccountCommand = { type: 'ChangePlan', accountId: ACCOUNT, changeId: 'ch1', planId: 'max', unlimited: false, thresholds: [20], overdraftPolicy: 'carry' };
      const { state } = given([opened]).when(change).then([
        { type: 'PlanChanged', data: { changeId: 'ch1', planId: 'max', unlimited: false, thresholds: [20], overdraftPolicy: 'carry' } },
      ]);
      expect(decide(change, state, { now: NOW })).toEqual([]);
      expect(() => decide({ ...change, planId: 'mini' }, state, { now: NOW })).toThrow(AccountError);
    });

    it('keeps the seen keys in state: a usage by its debit, the others in seen', () => {
      const state = fold(history);
      expect(state.seen.toObject()).toEqual({ 'grant:g1': `purchased|${cr(10)}|-|test:g1` });
      expect(remembered(state, 'usage', 'u1')).toBe(`${cr(1)}`);
      expect(remembered(state, 'grant', 'g1')).toBe(`purchased|${cr(10)}|-|test:g1`);
      expect(remembered(state, 'usage', 'u2')).toBeUndefined();
    });

    it("gives a grant key's first content back, a source with | in it whole", () => {
      const promo = grantCommand('g2', 'promotional', cr(5), { source: 'promo:a|b|c', expiresAt: '2025-04-01T00:00:00.000Z' });
      const { state } = given(history).when(promo).then([granted('g2', 'promotional', cr(5), { source: 'promo:a|b|c', expiresAt: '2025-04-01T00:00:00.000Z' })]);
      expect(rememberedGrant(state, 'g2')).toEqual({ kind: 'promotional', amount: cr(5), expiresAt: '2025-04-01T00:00:00.000Z', source: 'promo:a|b|c' });
      expect(rememberedGrant(state, 'g1')).toEqual({ kind: 'purchased', amount: cr(10), source: 'test:g1' });
      expect(rememberedGrant(state, 'g3')).toBeUndefined();
    });

    it('remembers a new key without touching the previous state (states are values)', () => {
      const before = fold(history);
      const after = evolve(before, debited('u2', cr(1), [share('g1', 'purchased', cr(1))]));
      expect(remembered(after, 'usage', 'u2')).toBe(`${cr(1)}`);
      expect(remembered(before, 'usage', 'u2')).toBeUndefined();
      expect(before.debits.size).toBe(1);
    });
  });

  describe('rule 4: usage is never dropped', () => {
    it('takes what is available and carries the rest as overdraft (default policy)', () => {
      given([opened, granted('g1', 'purchased', cr(3))])
        .when(usageCommand('u1', cr(5)))
        .then([
          debited('u1', cr(5), [share('g1', 'purchased', cr(3))], { overdraft: cr(2) }),
          overdraftIncurred('u1', cr(2), cr(2)),
          { type: 'CreditsDepleted', data: { usageId: 'u1' } },
        ]);
    });

    it('adds to the overdraft already carried', () => {
      given([opened, debited('u0', cr(1), [], { overdraft: cr(1) }), overdraftIncurred('u0', cr(1), cr(1)), depleted('u0')])
        .when(usageCommand('u1', cr(2)))
        .then([debited('u1', cr(2), [], { overdraft: cr(2) }), overdraftIncurred('u1', cr(2), cr(3))]);
    });

    it('records and writes off the rest under a write-off plan', () => {
      const { state } = given([opened, ...cycleWithAllowance('c1', cr(1), { thresholds: [], overdraftPolicy: 'write-off' })])
        .when(usageCommand('u1', cr(3)))
        .then([
          debited('u1', cr(3), [share('allowance:c1', 'allowance', cr(1))], { overdraft: cr(2) }),
          { type: 'OverdraftWrittenOff', data: { usageId: 'u1', amount: cr(2) } },
          { type: 'CreditsDepleted', data: { cycleId: 'c1', usageId: 'u1' } },
        ]);
      expect(state.overdraft).toBe(0n);
    });

    it('settles the overdraft from the next grant first, the bucket gets the rest', () => {
      const { state } = given([opened, debited('u0', cr(4), [], { overdraft: cr(4) }), overdraftIncurred('u0', cr(4), cr(4))])
        .when(grantCommand('g1', 'purchased', cr(10)))
        .then([
          { type: 'OverdraftSettled', data: { grantId: 'g1', amount: cr(4), remaining: 0n } },
          granted('g1', 'purchased', cr(6), { overdraftSettled: cr(4) }),
        ]);
      expect(balanceView(state, NOW)).toMatchObject({ available: cr(6), overdraft: 0n });
    });

    it('keeps carrying what a small grant could not settle', () => {
      const { state } = given([opened, debited('u0', cr(4), [], { overdraft: cr(4) }), overdraftIncurred('u0', cr(4), cr(4))])
        .when(grantCommand('g1', 'purchased', cr(1)))
        .then([
          { type: 'OverdraftSettled', data: { grantId: 'g1', amount: cr(1), remaining: cr(3) } },
          granted('g1', 'purchased', 0n, { overdraftSettled: cr(1) }),
        ]);
      expect(state.overdraft).toBe(cr(3));
      expect(state.buckets).toEqual([]);
    });

    it('settles the overdraft from a new cycle allowance', () => {
      given([opened, debited('u0', cr(4), [], { overdraft: cr(4) }), overdraftIncurred('u0', cr(4), cr(4))])
        .when(startCycleCommand('c1', cr(100)))
        .then([
          cycleStarted('c1', cr(100)),
          { type: 'OverdraftSettled', data: { grantId: 'allowance:c1', amount: cr(4), remaining: 0n } },
          granted('allowance:c1', 'allowance', cr(96), { expiresAt: CYCLE_END, source: 'plan:pro', overdraftSettled: cr(4) }),
        ]);
    });
  });

  describe('a new cycle whose allowance the carried overdraft takes whole', () => {
    // Depleted in the cycle before (its CreditsDepleted announced), still owing more than the next allowance.
    const owing = [opened, debited('u0', cr(4), [], { overdraft: cr(4) }), overdraftIncurred('u0', cr(4), cr(4)), { type: 'CreditsDepleted', data: { usageId: 'u0' } } as const];

    it('announces the new cycle depleted, as it announces its thresholds: the account starts it with nothing to spend', () => {
      given(owing)
        .when(startCycleCommand('c1', cr(3)))
        .then([
          cycleStarted('c1', cr(3)),
          { type: 'OverdraftSettled', data: { grantId: 'allowance:c1', amount: cr(3), remaining: cr(1) } },
          granted('allowance:c1', 'allowance', 0n, { expiresAt: CYCLE_END, source: 'plan:pro', overdraftSettled: cr(3) }),
          { type: 'LowCreditThresholdCrossed', data: { thresholdPercent: 20, cycleId: 'c1', available: 0n, allocation: cr(3) } },
          { type: 'LowCreditThresholdCrossed', data: { thresholdPercent: 5, cycleId: 'c1', available: 0n, allocation: cr(3) } },
          { type: 'CreditsDepleted', data: { cycleId: 'c1' } },
        ]);
    });

    it('announces it once: the next usage of the cycle, carried too, announces nothing more', () => {
      const renewal = given(owing).when(startCycleCommand('c1', cr(3))).events();
      given([...owing, ...renewal])
        .when(usageCommand('u1', cr(2)))
        .then([debited('u1', cr(2), [], { overdraft: cr(2) }), overdraftIncurred('u1', cr(2), cr(3))]);
    });
  });

  describe('rule 5: unlimited accounts', () => {
    const unlimited = [opened, ...cycleWithAllowance('c1', cr(10), { unlimited: true })];

    it('records usage without touching buckets, overdraft, thresholds or depletion', () => {
      const { state } = given(unlimited)
        .when(usageCommand('u1', cr(500)))
        .then([debited('u1', cr(500), [])]);
      expect(balanceView(state, NOW)).toMatchObject({ available: cr(10), overdraft: 0n, usedThisCycle: cr(500), unlimited: true });
    });

    it('becomes unlimited through ChangePlan', () => {
      given([opened, { type: 'PlanChanged', data: { changeId: 'ch1', planId: 'custom', unlimited: true, thresholds: [], overdraftPolicy: 'carry' } }])
        .when(usageCommand('u1', cr(5)))
        .then([debited('u1', cr(5), [])]);
    });

    it('allows a hold without reserving anything: no hold is recorded, so none is released or settled later', () => {
      const { state } = given([opened, cycleStarted('c1', 0n, { unlimited: true })])
        .when(holdCommand('h1', cr(1000)))
        .then([]);
      expect(balanceView(state, NOW)).toMatchObject({ held: 0n, available: 0n });
      given([opened, cycleStarted('c1', 0n, { unlimited: true })])
        .when(usageCommand('u1', cr(3), { holdId: 'h1' }))
        .then([debited('u1', cr(3), [])]);
    });

    it('decides nothing for a hold, not even what falls due: a hold is not remembered, so a retry would decide it again under the same key', () => {
      // Given a promotional grant past its expiry that nothing has expired yet (EventStoreDB: no expiry worker)
      const promo = granted('promo', 'promotional', cr(5), { expiresAt: '2025-03-10T11:00:00.000Z' });
      // When a hold is placed, and placed again (a retry) once another grant fell due
      given([opened, cycleStarted('c1', 0n, { unlimited: true }), promo]).when(holdCommand('h1', cr(1000))).then([]);
      const later = granted('later', 'promotional', cr(5), { bucketId: 'later', expiresAt: '2025-03-10T11:30:00.000Z' });
      // Then neither decides anything (events under one key must be the same each time the key is decided)
      given([opened, cycleStarted('c1', 0n, { unlimited: true }), promo, later]).when(holdCommand('h1', cr(1000))).then([]);
    });
  });

  describe('holds that are already due', () => {
    it('refuses a hold whose expiry is not after now (it would be placed and expired at once)', () => {
      given([opened, ...cycleWithAllowance('c1', cr(10))])
        .when(holdCommand('h1', cr(1), AT))
        .thenThrows('INVALID_COMMAND', { expiresAt: AT });
    });
  });

  describe('rule 6: low-credit thresholds and depletion', () => {
    const cycle = [opened, ...cycleWithAllowance('c1', cr(100))];
    const crossed = (thresholdPercent: number, available: bigint, cycleId = 'c1') => ({
      type: 'LowCreditThresholdCrossed' as const,
      data: { thresholdPercent, cycleId, available, allocation: cr(100) },
    });
    const use = (usageId: string, amount: bigint) => debited(usageId, amount, [share('allowance:c1', 'allowance', amount)]);

    it('announces a threshold when available falls below it', () => {
      given(cycle).when(usageCommand('u1', cr(81))).then([use('u1', cr(81)), crossed(20, cr(19))]);
    });

    it('does not announce at exactly the threshold', () => {
      given(cycle).when(usageCommand('u1', cr(80))).then([use('u1', cr(80))]);
    });

    it('announces each threshold once per cycle', () => {
      given([...cycle, use('u1', cr(81)), crossed(20, cr(19))])
        .when(usageCommand('u2', cr(1)))
        .then([use('u2', cr(1))]);
    });

    it('announces every threshold one debit crosses, the higher first', () => {
      given(cycle).when(usageCommand('u1', cr(96))).then([use('u1', cr(96)), crossed(20, cr(4)), crossed(5, cr(4))]);
    });

    it('never announces without an allocation', () => {
      given([opened, granted('g1', 'purchased', cr(10))]).when(usageCommand('u1', cr(9))).then([debited('u1', cr(9), [share('g1', 'purchased', cr(9))])]);
      given([opened, cycleStarted('c1', 0n), granted('g1', 'purchased', cr(10))])
        .when(usageCommand('u1', cr(9)))
        .then([debited('u1', cr(9), [share('g1', 'purchased', cr(9))])]);
    });

    it('re-arms a threshold when a grant lifts available back to it', () => {
      const { state } = given([...cycle, use('u1', cr(96)), crossed(20, cr(4)), crossed(5, cr(4))])
        .when(grantCommand('g1', 'purchased', cr(6)))
        .then([granted('g1', 'purchased', cr(6))]);
      expect([...state.crossedThresholds]).toEqual([20]); // 10 credits left: 5% is armed again, 20% not
      given([...cycle, use('u1', cr(96)), crossed(20, cr(4)), crossed(5, cr(4)), granted('g1', 'purchased', cr(6))])
        .when(usageCommand('u2', cr(6)))
        .then([debited('u2', cr(6), [share('allowance:c1', 'allowance', cr(4)), share('g1', 'purchased', cr(2))]), crossed(5, cr(4))]);
    });

    // Its credits were never spendable: available never rose, so nothing was lifted back to a threshold or out of
    // depletion, and the next usage must not announce them a second time in the cycle (a second email and webhook).
    it('does not re-arm thresholds or depletion for a grant that arrives already expired', () => {
      const low = [...cycle, use('u1', cr(97)), crossed(20, cr(3)), crossed(5, cr(3))];
      const late = grantCommand('late', 'promotional', cr(50), { expiresAt: '2025-03-09T00:00:00.000Z' });
      const { state } = given(low).when(late).then([
        granted('late', 'promotional', cr(50), { expiresAt: '2025-03-09T00:00:00.000Z' }),
        { type: 'CreditsExpired', data: { bucketId: 'late', kind: 'promotional', amount: cr(50), reason: 'expired', expiredAt: AT } },
      ]);
      expect([...state.crossedThresholds].sort()).toEqual([20, 5]);
      expect(decide(usageCommand('u2', 0n), state, { now: NOW })).toEqual([debited('u2', 0n, [])]);

      const empty = [...cycle, use('u1', cr(100)), crossed(20, 0n), crossed(5, 0n), depleted('u1', 'c1')];
      const afterLate = fold([...empty, granted('late', 'promotional', cr(50), { expiresAt: '2025-03-09T00:00:00.000Z' }), { type: 'CreditsExpired', data: { bucketId: 'late', kind: 'promotional', amount: cr(50), reason: 'expired', expiredAt: AT } }]);
      expect(afterLate.depleted).toBe(true);
    });

    it('announces a threshold when expiring credits take available below it (a promotion ending), while the cycle runs', () => {
      const promo = granted('promo', 'promotional', cr(15), { expiresAt: '2025-03-20T00:00:00.000Z' });
      const boosted = [...cycle, use('u1', cr(90)), crossed(20, cr(10)), promo]; // 25 left: 20% re-armed
      given(boosted)
        .when({ type: 'ExpireCredits', accountId: ACCOUNT, bucketId: 'promo' }, at('2025-03-20T00:00:00.000Z'))
        .then([
          { type: 'CreditsExpired', data: { bucketId: 'promo', kind: 'promotional', amount: cr(15), reason: 'expired', expiredAt: '2025-03-20T00:00:00.000Z' } },
          crossed(20, cr(10)),
        ]);
      // At the end of the period the allowance expires with the cycle: that is no low balance.
      given([...cycle, use('u1', cr(70))])
        .when({ type: 'ExpireCredits', accountId: ACCOUNT }, at(CYCLE_END))
        .then([{ type: 'CreditsExpired', data: { bucketId: 'allowance:c1', kind: 'allowance', amount: cr(30), reason: 'expired', expiredAt: CYCLE_END } }]);
    });

    // A hold reserves credits; it does not spend them. A product that holds an estimate for every answer and settles it
    // for what the answer used would otherwise be warned at every answer while within one hold of a threshold: each
    // hold took available below it, each settle for less brought it back, re-arming it.
    describe('holds reserve, they do not spend: a threshold is judged on the credits left with what holds reserve', () => {
      const holdFor = (holdId: string, amount: bigint) => holdCommand(holdId, amount);

      it('placing a hold that takes available below a threshold announces nothing', () => {
        given(cycle)
          .when(holdFor('h1', cr(85)))
          .then([{ type: 'HoldPlaced', data: { holdId: 'h1', amount: cr(85), perBucket: [share('allowance:c1', 'allowance', cr(85))], expiresAt: '2025-03-10T12:05:00.000Z' } }]);
      });

      it('a hold settled for all it reserved announces the fall', () => {
        const placed = decide(holdFor('h1', cr(85)), fold(cycle), { now: NOW });
        const settle = decide({ ...usageCommand('u1', cr(85)), holdId: 'h1' }, fold([...cycle, ...placed]), { now: NOW });
        expect(settle.filter((event) => event.type === 'LowCreditThresholdCrossed')).toEqual([crossed(20, cr(15))]);
      });

      it('what a hold reserves from credits that have expired since (an allowance of the cycle before) is no longer left: it does not hold back a warning', () => {
        const placed = decide(holdCommand('h1', cr(30), '2025-04-01T12:00:00.000Z'), fold(cycle), { now: NOW });
        const renewed = decide(startCycleCommand('c2', cr(100), { periodStart: CYCLE_END, periodEnd: '2025-05-01T00:00:00.000Z' }), fold([...cycle, ...placed]), at(CYCLE_END));
        const later = at('2025-04-01T01:00:00.000Z');
        const spent = decide(usageCommand('u1', cr(85)), fold([...cycle, ...placed, ...renewed]), later);
        expect(spent.filter((event) => event.type === 'LowCreditThresholdCrossed')).toEqual([crossed(20, cr(15), 'c2')]);
      });

      it('an answer a hold at a time, near a threshold: warned once, when what was spent takes the balance below it', () => {
        let events: ReturnType<typeof decide> = [...cycle, use('u0', cr(75))]; // 25 left
        const announced: number[] = [];
        for (let answer = 1; answer <= 80; answer++) {
          for (const command of [holdFor(`h${answer}`, cr(10)), { ...usageCommand(`u${answer}`, 100_000n /* 0.1 credit */), holdId: `h${answer}` }]) {
            const decided = decide(command, fold(events), { now: NOW });
            for (const event of decided) if (event.type === 'LowCreditThresholdCrossed') announced.push(answer);
            events = [...events, ...decided];
          }
        }
        expect(announced).toEqual([51]); // 25 - 51 × 0.1 = 19.9
      });
    });

    // A hold announced the thresholds it took available below; released (or settled for less), its credits came back:
    // the next fall below them is a new one, and the person is warned again before running out.
    describe('credits a hold gives back', () => {
      const placed = { type: 'HoldPlaced' as const, data: { holdId: 'h1', amount: cr(85), perBucket: [share('allowance:c1', 'allowance', cr(85))], expiresAt: '2025-03-10T12:05:00.000Z' } };
      const heldLow = [...cycle, placed, crossed(20, cr(15))];

      it('re-arm a threshold a release lifted available back above', () => {
        const released = [...heldLow, { type: 'HoldReleased' as const, data: { holdId: 'h1', amount: cr(85), reason: 'released' as const } }];
        given(released).when(usageCommand('u1', cr(81))).then([use('u1', cr(81)), crossed(20, cr(19))]);
      });

      it('re-arm a threshold the hold expiring (released by this very command) lifts available back above', () => {
        given(heldLow)
          .when(usageCommand('u1', cr(81)), at('2025-03-10T12:05:00.000Z'))
          .then([
            { type: 'HoldReleased', data: { holdId: 'h1', amount: cr(85), reason: 'expired' } },
            { ...use('u1', cr(81)), data: { ...use('u1', cr(81)).data, debitedAt: '2025-03-10T12:05:00.000Z' } },
            crossed(20, cr(19)),
          ]);
      });

      it('re-arm a threshold a usage settling the hold for less leaves available above', () => {
        const settle = decide({ ...usageCommand('u1', cr(5)), holdId: 'h1' }, fold(heldLow), { now: NOW });
        const settled = fold([...heldLow, ...settle]);
        expect(settle.filter((event) => event.type === 'LowCreditThresholdCrossed')).toEqual([]); // 95 left
        expect(decide(usageCommand('u2', cr(76)), settled, { now: NOW })).toEqual([use('u2', cr(76)), crossed(20, cr(19))]);
      });

      it('do not re-arm a threshold while available stays below it (no second announcement of one fall)', () => {
        const settle = decide({ ...usageCommand('u1', cr(84)), holdId: 'h1' }, fold(heldLow), { now: NOW });
        expect(decide(usageCommand('u2', cr(1)), fold([...heldLow, ...settle]), { now: NOW })).toEqual([use('u2', cr(1))]); // 15, then 14
      });

      it('re-arm depletion a release lifted available back from 0', () => {
        const half = { ...placed, data: { ...placed.data, amount: cr(50), perBucket: [share('allowance:c1', 'allowance', cr(50))] } };
        const emptied = [...cycle, half, use('u1', cr(50)), crossed(20, 0n), crossed(5, 0n), depleted('u1', 'c1')];
        const released = [...emptied, { type: 'HoldReleased' as const, data: { holdId: 'h1', amount: cr(50), reason: 'released' as const } }];
        given(released)
          .when(usageCommand('u2', cr(50)))
          .then([use('u2', cr(50)), crossed(20, 0n), crossed(5, 0n), { type: 'CreditsDepleted', data: { cycleId: 'c1', usageId: 'u2' } }]);
      });
    });

    it('re-arms every threshold when a new cycle starts', () => {
      const previous = [...cycle, use('u1', cr(96)), crossed(20, cr(4)), crossed(5, cr(4))];
      const state = fold([...previous, cycleStarted('c2', cr(100))]);
      expect(state.crossedThresholds.size).toBe(0);
    });

    it('announces depletion when available reaches 0, once until a grant lifts it', () => {
      const emptied = [...cycle, use('u1', cr(100)), crossed(20, 0n), crossed(5, 0n)];
      given(cycle)
        .when(usageCommand('u1', cr(100)))
        .then([...emptied.slice(cycle.length), { type: 'CreditsDepleted', data: { cycleId: 'c1', usageId: 'u1' } }]);
      const depletedHistory = [...emptied, depleted('u1', 'c1')];
      given(depletedHistory).when(usageCommand('u2', 0n)).then([debited('u2', 0n, [])]);
      given([...depletedHistory, granted('g1', 'purchased', cr(1))])
        .when(usageCommand('u2', cr(1)))
        .then([debited('u2', cr(1), [share('g1', 'purchased', cr(1))]), { type: 'CreditsDepleted', data: { cycleId: 'c1', usageId: 'u2' } }]);
    });
  });

  describe('rule 7: StartCycle', () => {
    const previous = [
      opened,
      ...cycleWithAllowance('c1', cr(100)),
      granted('g1', 'purchased', cr(50)),
      granted('promo', 'promotional', cr(5)),
      debited('u1', cr(70), [share('allowance:c1', 'allowance', cr(70))]),
    ];
    const next = { cycleId: 'c2', periodStart: CYCLE_END, periodEnd: '2025-05-01T00:00:00.000Z', planId: 'max' };

    it('expires what is left of the previous allowance, starts the cycle and grants the allocation', () => {
      const { state } = given(previous)
        .when(startCycleCommand('c2', cr(200), next))
        .then([
          { type: 'CreditsExpired', data: { bucketId: 'allowance:c1', kind: 'allowance', amount: cr(30), reason: 'cycle-reset', expiredAt: AT } },
          cycleStarted('c2', cr(200), next),
          granted('allowance:c2', 'allowance', cr(200), { expiresAt: next.periodEnd, source: 'plan:max' }),
        ]);
      expect(balanceView(state, NOW)).toEqual({
        available: cr(255),
        byKind: { allowance: cr(200), promotional: cr(5), purchased: cr(50) },
        held: 0n,
        overdraft: 0n,
        allocation: cr(200),
        usedThisCycle: 0n,
        cycleId: 'c2',
        cycleEnd: next.periodEnd,
        unlimited: false,
        planId: 'max',
      });
    });

    it('expires nothing when the previous allowance was spent', () => {
      given([opened, ...cycleWithAllowance('c1', cr(10)), debited('u1', cr(10), [share('allowance:c1', 'allowance', cr(10))])])
        .when(startCycleCommand('c2', cr(10), next))
        .then([cycleStarted('c2', cr(10), next), granted('allowance:c2', 'allowance', cr(10), { expiresAt: next.periodEnd, source: 'plan:max' })]);
    });

    it('at the period boundary the previous allowance has already expired by date', () => {
      given(previous)
        .when(startCycleCommand('c2', cr(200), next), at(CYCLE_END))
        .then([
          { type: 'CreditsExpired', data: { bucketId: 'allowance:c1', kind: 'allowance', amount: cr(30), reason: 'expired', expiredAt: CYCLE_END } },
          cycleStarted('c2', cr(200), next),
          granted('allowance:c2', 'allowance', cr(200), { expiresAt: next.periodEnd, source: 'plan:max', grantedAt: CYCLE_END }),
        ]);
    });

    it('refuses a cycle that starts before the current one (a stale message replayed): the current allowance and cycle stay', () => {
      const current = [...previous, ...cycleWithAllowance('c2', cr(200), next)];
      given(current)
        .when(startCycleCommand('c0', cr(100), { periodStart: '2025-02-01T00:00:00.000Z', periodEnd: CYCLE_START }))
        .thenThrows('INVALID_COMMAND');
      given(current).when(startCycleCommand('c1', cr(100))).then([]); // the same cycle delivered again is still a repeat
    });

    // Between a cycle's end and the next CycleStarted (the scheduler's tick, its outbox and this consumer take seconds;
    // their outage longer) usage belongs to the next cycle: it must not spend purchased or promotional credits that
    // the next allowance would have spared.
    describe('usage between the end of a cycle and the next CycleStarted', () => {
      const gap = '2025-04-01T00:00:05.000Z';
      const ended = [opened, ...cycleWithAllowance('c1', cr(100)), granted('g1', 'purchased', cr(50)), granted('promo', 'promotional', cr(5))];
      const expiredC1 = { type: 'CreditsExpired' as const, data: { bucketId: 'allowance:c1', kind: 'allowance' as const, amount: cr(100), reason: 'expired' as const, expiredAt: gap } };
      const deferred = (usageId: string, amount: bigint, total: bigint) => [
        debited(usageId, amount, [], { overdraft: amount, debitedAt: gap }),
        { type: 'OverdraftIncurred' as const, data: { usageId, amount, total } },
      ];

      it('is deferred as overdraft, taking no purchased or promotional credits, and the next allowance pays it', () => {
        const { state } = given(ended)
          .when(usageCommand('u1', cr(20)), at(gap))
          .then([expiredC1, ...deferred('u1', cr(20), cr(20))]);
        expect(balanceView(state, new Date(gap))).toMatchObject({ available: cr(55), overdraft: cr(20) });
      });

      it('under a write-off plan too: it is owed to the next allowance, not forgiven', () => {
        given([opened, ...cycleWithAllowance('c1', cr(100), { overdraftPolicy: 'write-off' }), granted('g1', 'purchased', cr(50))])
          .when(usageCommand('u1', cr(20)), at(gap))
          .then([
            { type: 'CreditsExpired', data: { bucketId: 'allowance:c1', kind: 'allowance', amount: cr(100), reason: 'expired', expiredAt: gap } },
            ...deferred('u1', cr(20), cr(20)),
          ]);
      });

      it('the next allowance pays the deferred usage first; a refund of it before then takes the overdraft back', () => {
        const history = [...ended, expiredC1, ...deferred('u1', cr(20), cr(20))];
        const { state } = given(history)
          .when(startCycleCommand('c2', cr(100), next), at(gap))
          .then([
            cycleStarted('c2', cr(100), next),
            { type: 'OverdraftSettled', data: { grantId: 'allowance:c2', amount: cr(20), remaining: 0n } },
            granted('allowance:c2', 'allowance', cr(80), { expiresAt: next.periodEnd, source: 'plan:max', grantedAt: gap, overdraftSettled: cr(20) }),
          ]);
        expect(balanceView(state, new Date(gap))).toMatchObject({ available: cr(135), byKind: { allowance: cr(80), promotional: cr(5), purchased: cr(50) }, overdraft: 0n });
        // Deferred under a write-off plan, the usage is owed all the same: refunding it takes the overdraft back.
        const writeOff = history.map((e) => (e.type === 'CycleStarted' ? { ...e, data: { ...e.data, overdraftPolicy: 'write-off' as const } } : e));
        const refund: AccountCommand = { type: 'RefundUsage', accountId: ACCOUNT, refundId: 'refund:r1', usageId: 'u1', reason: 'bad answer', restoreExpired: false };
        const refunded = given(writeOff).when(refund, at(gap)).events();
        expect(balanceView(fold([...writeOff, ...refunded]), new Date(gap))).toMatchObject({ overdraft: 0n, available: cr(55) });
      });

      // subscription-cycle down for longer than a cycle starts the cycles it missed late, in order (its Tick): the first
      // one's allowance pays the gap's usage and expires with its period, the next is granted whole.
      it('cycles missed during an outage, started late in order: the first pays the deferred usage and expires, the next is granted whole', () => {
        const third = { ...next, cycleId: 'c3', periodStart: next.periodEnd, periodEnd: '2025-06-01T00:00:00.000Z' };
        const late = '2025-05-10T00:00:00.000Z'; // in the third cycle: the second ended on May 1
        const history = [...ended, expiredC1, ...deferred('u1', cr(20), cr(20))];
        const { state: missed } = given(history)
          .when(startCycleCommand('c2', cr(100), next), at(late))
          .then([
            cycleStarted('c2', cr(100), next),
            { type: 'OverdraftSettled', data: { grantId: 'allowance:c2', amount: cr(20), remaining: 0n } },
            granted('allowance:c2', 'allowance', cr(80), { expiresAt: next.periodEnd, source: 'plan:max', grantedAt: late, overdraftSettled: cr(20) }),
            { type: 'CreditsExpired', data: { bucketId: 'allowance:c2', kind: 'allowance', amount: cr(80), reason: 'expired', expiredAt: late } },
          ]);
        expect(balanceView(missed, new Date(late))).toMatchObject({ overdraft: 0n, available: cr(55), byKind: { allowance: 0n, purchased: cr(50), promotional: cr(5) } });
        const renewed = given(history).when(startCycleCommand('c2', cr(100), next), at(late)).events();
        const { state: current } = given([...history, ...renewed])
          .when(startCycleCommand('c3', cr(100), third), at(late))
          .then([
            cycleStarted('c3', cr(100), third),
            granted('allowance:c3', 'allowance', cr(100), { expiresAt: third.periodEnd, source: 'plan:max', grantedAt: late }),
          ]);
        expect(balanceView(current, new Date(late))).toMatchObject({ overdraft: 0n, available: cr(155), byKind: { allowance: cr(100) }, usedThisCycle: 0n });
      });

      it('counts as used in the cycle that pays it: the renewal starts the cycle\'s use at what the account owed', () => {
        const history = [...ended, expiredC1, ...deferred('u1', cr(20), cr(20))];
        const renewed = [...history, ...given(history).when(startCycleCommand('c2', cr(100), next), at(gap)).events()];
        expect(balanceView(fold(renewed), new Date(gap))).toMatchObject({ byKind: { allowance: cr(80) }, usedThisCycle: cr(20) });
        // Usage after the renewal adds to it as usual.
        const used = given(renewed).when(usageCommand('u2', cr(5)), at(gap)).events();
        expect(balanceView(fold([...renewed, ...used]), new Date(gap))).toMatchObject({ byKind: { allowance: cr(75) }, usedThisCycle: cr(25) });
        // Refunded, it gives this cycle's allowance back and is used no more; a next cycle's use does not count it.
        const refund = (refundId: string, amount: bigint): AccountCommand => ({ type: 'RefundUsage', accountId: ACCOUNT, refundId, usageId: 'u1', amount, reason: 'bad answer', restoreExpired: false });
        const refunded = [...renewed, ...used, ...given([...renewed, ...used]).when(refund('refund:r1', cr(8)), at(gap)).events()];
        expect(balanceView(fold(refunded), new Date(gap))).toMatchObject({ byKind: { allowance: cr(83) }, usedThisCycle: cr(17) });
        const third = { periodStart: next.periodEnd, periodEnd: '2025-06-01T00:00:00.000Z' };
        const renewedAgain = [...refunded, ...given(refunded).when(startCycleCommand('c3', cr(100), third), at(third.periodStart)).events()];
        const later = [...renewedAgain, ...given(renewedAgain).when(usageCommand('u3', cr(5)), at(third.periodStart)).events()];
        const again = given(later).when(refund('refund:r2', cr(2)), at(third.periodStart)).events();
        expect(balanceView(fold([...later, ...again]), new Date(third.periodStart))).toMatchObject({ usedThisCycle: cr(5) });
      });

      it('what the next allowance cannot pay of the deferred usage, the other credits pay at the renewal, in deduction order', () => {
        const history = [...ended, expiredC1, ...deferred('u1', cr(150), cr(150))];
        const { state } = given(history)
          .when(startCycleCommand('c2', cr(100), next), at(gap))
          .then([
            cycleStarted('c2', cr(100), next),
            { type: 'OverdraftSettled', data: { grantId: 'allowance:c2', amount: cr(100), remaining: cr(50) } },
            granted('allowance:c2', 'allowance', 0n, { expiresAt: next.periodEnd, source: 'plan:max', grantedAt: gap, overdraftSettled: cr(100) }),
            { type: 'OverdraftSettled', data: { grantId: 'promo', amount: cr(5), remaining: cr(45), fromBucket: true } },
            { type: 'OverdraftSettled', data: { grantId: 'g1', amount: cr(45), remaining: 0n, fromBucket: true } },
            { type: 'LowCreditThresholdCrossed', data: { thresholdPercent: 20, cycleId: 'c2', available: cr(5), allocation: cr(100) } },
          ]);
        // As if the usage had come after the renewal: the allowance, then the promotion, then purchased credits, and
        // what is left announced as low (5 of 100: the 20% threshold).
        expect(balanceView(state, new Date(gap))).toMatchObject({ available: cr(5), byKind: { allowance: 0n, promotional: 0n, purchased: cr(5) }, overdraft: 0n });
        // A cycle without an allowance (a cancelled plan's fallback) leaves it all to the other credits.
        given(history)
          .when(startCycleCommand('c2', 0n, next), at(gap))
          .then([
            cycleStarted('c2', 0n, next),
            { type: 'OverdraftSettled', data: { grantId: 'promo', amount: cr(5), remaining: cr(145), fromBucket: true } },
            { type: 'OverdraftSettled', data: { grantId: 'g1', amount: cr(50), remaining: cr(95), fromBucket: true } },
            { type: 'CreditsDepleted', data: { cycleId: 'c2' } },
          ]);
      });

      it('a bucket that paid a deferred usage in two settlements (the renewal, then a released hold) gets one share back at its refund', () => {
        const hold = { type: 'HoldPlaced' as const, data: { holdId: 'h1', amount: 1n, perBucket: [share('g1', 'purchased', 1n)], expiresAt: '2025-04-01T00:10:00.000Z' } };
        const history = [opened, ...cycleWithAllowance('c1', cr(100)), granted('g1', 'purchased', cr(1)), hold, expiredC1, ...deferred('u1', cr(1), cr(1))];
        const renewed = [...history, ...given(history).when(startCycleCommand('c2', 0n, next), at(gap)).events()];
        const released = [...renewed, ...given(renewed).when({ type: 'ReleaseHold', accountId: ACCOUNT, holdId: 'h1', reason: 'released' }, at(gap)).events()];
        expect(released.filter((e) => e.type === 'OverdraftSettled').map((e) => e.data)).toEqual([
          { grantId: 'g1', amount: cr(1) - 1n, remaining: 1n, fromBucket: true },
          { grantId: 'g1', amount: 1n, remaining: 0n, fromBucket: true },
        ]);

        const refunded = given(released)
          .when({ type: 'RefundUsage', accountId: ACCOUNT, refundId: 'refund:r1', usageId: 'u1', reason: 'bad answer', restoreExpired: false }, at(gap))
          .events();

        expect(refunded).toMatchObject([{ type: 'UsageRefunded', data: { restored: [share('g1', 'purchased', cr(1))], overdraftReduced: 0n } }]);
      });

      it('announces no low balance and no depletion of the cycle that has ended (the next allowance pays)', () => {
        given([opened, ...cycleWithAllowance('c1', cr(100)), granted('g1', 'purchased', cr(10))])
          .when(usageCommand('u1', cr(1)), at(gap))
          .then([expiredC1, ...deferred('u1', cr(1), cr(1))]);
        given([opened, ...cycleWithAllowance('c1', cr(100))])
          .when(usageCommand('u1', cr(1)), at(gap))
          .then([expiredC1, ...deferred('u1', cr(1), cr(1))]);
        given([opened, ...cycleWithAllowance('c1', cr(100)), granted('g1', 'purchased', cr(10))])
          .when(holdCommand('h1', cr(5), '2025-04-01T00:05:00.000Z'), at(gap))
          .then([expiredC1, { type: 'HoldPlaced', data: { holdId: 'h1', amount: cr(5), perBucket: [share('g1', 'purchased', cr(5))], expiresAt: '2025-04-01T00:05:00.000Z' } }]);
      });

      // Only the renewal can say whether the account can pay: "Insufficient Credits" would tell a subscriber with a
      // paid plan to buy a pack. The refusal is retryable (the HTTP transport answers 503 with Retry-After).
      it('refuses a hold the credits left cannot cover as CYCLE_RENEWAL_PENDING, not INSUFFICIENT_CREDITS', () => {
        const hold = holdCommand('h1', cr(5), '2025-04-01T00:05:00.000Z');
        const pending = { cycleId: 'c1', cycleEnd: CYCLE_END };
        given([opened, ...cycleWithAllowance('c1', cr(100))]).when(hold, at(gap)).thenThrows('CYCLE_RENEWAL_PENDING', pending);
        given([opened, ...cycleWithAllowance('c1', cr(100)), granted('g1', 'purchased', cr(3))]).when(hold, at(gap)).thenThrows('CYCLE_RENEWAL_PENDING', pending);
        // A cycle without an allowance renews nothing the hold could wait for; before the end, the refusal is the usual one.
        given([opened, cycleStarted('c1', 0n)]).when(hold, at(gap)).thenThrows('INSUFFICIENT_CREDITS');
        given([opened, ...cycleWithAllowance('c1', cr(1))]).when(hold).thenThrows('INSUFFICIENT_CREDITS');
      });

      it('is charged as usual once the next cycle started, and for an account without a cycle or an allowance', () => {
        given([...ended, expiredC1, ...cycleWithAllowance('c2', cr(100), next)])
          .when(usageCommand('u1', cr(20)), at(gap))
          .then([debited('u1', cr(20), [share('allowance:c2', 'allowance', cr(20))], { debitedAt: gap })]);
        given([opened, granted('g1', 'purchased', cr(50))])
          .when(usageCommand('u1', cr(20)), at(gap))
          .then([debited('u1', cr(20), [share('g1', 'purchased', cr(20))], { debitedAt: gap })]);
        given([opened, ...cycleWithAllowance('c1', 0n).slice(0, 1), granted('g1', 'purchased', cr(50))])
          .when(usageCommand('u1', cr(20)), at(gap))
          .then([debited('u1', cr(20), [share('g1', 'purchased', cr(20))], { debitedAt: gap })]);
      });
    });

    // Usage and subscription events reach the ledger through different consumers: whichever comes first, a hold
    // placed on the ended cycle's allowance and settled after its end leaves the same balance, and the previous
    // allowance never pays for the next cycle's balance (it never rolls over).
    describe('a hold on the previous allowance settled after the renewal', () => {
      const held = [opened, ...cycleWithAllowance('c1', cr(100)), { type: 'HoldPlaced' as const, data: { holdId: 'h1', amount: cr(30), perBucket: [share('allowance:c1', 'allowance', cr(30))], expiresAt: '2025-04-01T00:05:00.000Z' } }];
      const renewal = startCycleCommand('c2', cr(100), next);
      const settle = { ...usageCommand('u1', cr(30)), holdId: 'h1' };
      const afterEnd = '2025-04-01T00:00:10.000Z';

      it('gives the reservation back to the ended allowance, where it expires at once, and debits the new allowance', () => {
        const renewed = [...held, ...given(held).when(renewal, at('2025-04-01T00:00:05.000Z')).events()];
        given(renewed)
          .when(settle, at(afterEnd))
          .then([
            { type: 'HoldSettled', data: { holdId: 'h1', usageId: 'u1', heldAmount: cr(30), settledAmount: cr(30), releasedAmount: 0n } },
            { type: 'CreditsExpired', data: { bucketId: 'allowance:c1', kind: 'allowance', amount: cr(30), reason: 'expired', expiredAt: afterEnd } },
            debited('u1', cr(30), [share('allowance:c2', 'allowance', cr(30))], { debitedAt: afterEnd, holdId: 'h1' }),
          ]);
      });

      it('also when the hold reserved the whole allowance, and when an upgrade started the next cycle before the period end', () => {
        const whole = [opened, ...cycleWithAllowance('c1', cr(100)), { type: 'HoldPlaced' as const, data: { holdId: 'h1', amount: cr(100), perBucket: [share('allowance:c1', 'allowance', cr(100))], expiresAt: '2025-04-01T00:05:00.000Z' } }];
        for (const start of [{ ...next, periodStart: '2025-03-20T00:00:00.000Z', periodEnd: '2025-04-20T00:00:00.000Z' }, next]) {
          const when = start === next ? at(afterEnd) : at('2025-03-20T00:00:10.000Z');
          const renewed = [...whole, ...given(whole).when(startCycleCommand('c2', cr(100), start), when).events()];
          const events = given(renewed).when({ ...usageCommand('u1', cr(30)), holdId: 'h1' }, when).events();
          expect(events.find((e) => e.type === 'UsageDebited')).toMatchObject({ data: { perBucket: [share('allowance:c2', 'allowance', cr(30))] } });
          expect(balanceView(fold([...renewed, ...events]), when.now)).toMatchObject({ available: cr(70), byKind: { allowance: cr(70) } });
        }
      });

      it('leaves the balance the renewal-after-settlement order leaves', () => {
        const renewFirst = [...held, ...given(held).when(renewal, at('2025-04-01T00:00:05.000Z')).events()];
        const settledLast = fold([...renewFirst, ...given(renewFirst).when(settle, at(afterEnd)).events()]);
        const settleFirst = [...held, ...given(held).when(settle, at('2025-04-01T00:00:05.000Z')).events()];
        const renewedLast = fold([...settleFirst, ...given(settleFirst).when(renewal, at(afterEnd)).events()]);
        const view = (state: typeof settledLast) => {
          const { available, byKind, held: reserved, overdraft } = balanceView(state, new Date(afterEnd));
          return { available, byKind, held: reserved, overdraft };
        };
        expect(view(settledLast)).toEqual(view(renewedLast));
        expect(view(settledLast)).toMatchObject({ available: cr(70), overdraft: 0n });
      });
    });

    it('resets usedThisCycle', () => {
      expect(fold(previous).usedThisCycle).toBe(cr(70));
      expect(fold([...previous, cycleStarted('c2', cr(200), next)]).usedThisCycle).toBe(0n);
    });

    it('rejects a negative allocation or a period that ends before it starts', () => {
      given(previous).when(startCycleCommand('c2', -1n, next)).thenThrows('INVALID_AMOUNT');
      given(previous).when(startCycleCommand('c2', cr(1), { ...next, periodEnd: next.periodStart })).thenThrows('INVALID_COMMAND');
      given(previous).when(startCycleCommand('c2', cr(1), { ...next, thresholds: [120] })).thenThrows('INVALID_COMMAND');
    });
  });

  describe('rule 8: expiry', () => {
    const history = [
      opened,
      granted('promo', 'promotional', cr(5), { expiresAt: '2025-03-10T12:00:00.000Z' }),
      granted('later', 'promotional', cr(5), { expiresAt: '2025-03-20T00:00:00.000Z' }),
      granted('g1', 'purchased', cr(10)),
    ];
    const promoExpired = { type: 'CreditsExpired' as const, data: { bucketId: 'promo', kind: 'promotional' as const, amount: cr(5), reason: 'expired' as const, expiredAt: AT } };

    it('expires due buckets (expiresAt <= now) before the command events', () => {
      given(history)
        .when(usageCommand('u1', cr(1)))
        .then([promoExpired, debited('u1', cr(1), [share('later', 'promotional', cr(1))])]);
    });

    it('ExpireCredits only does the housekeeping', () => {
      given(history).when({ type: 'ExpireCredits', accountId: ACCOUNT }).then([promoExpired]);
      given(history).when({ type: 'ExpireCredits', accountId: ACCOUNT }, at('2025-03-10T11:59:59.999Z')).then([]);
    });

    it('ExpireCredits for one bucket expires it once it is due, and is a no-op before, after, or for a bucket without expiry', () => {
      const forPromo = { type: 'ExpireCredits' as const, accountId: ACCOUNT, bucketId: 'promo' };
      given(history).when(forPromo, at('2025-03-10T11:59:59.999Z')).then([]);
      given(history).when(forPromo).then([promoExpired]);
      given([...history, promoExpired]).when(forPromo).then([]);
      given(history).when({ ...forPromo, bucketId: 'g1' }).then([]);
      given(history).when({ ...forPromo, bucketId: 'unknown' }).then([]);
    });

    it('releases due holds, giving their reservations back', () => {
      const hold = { type: 'HoldPlaced' as const, data: { holdId: 'h1', amount: cr(3), perBucket: [share('g1', 'purchased', cr(3))], expiresAt: '2025-03-10T11:00:00.000Z' } };
      const { state } = given([opened, granted('g1', 'purchased', cr(10)), hold])
        .when({ type: 'ExpireCredits', accountId: ACCOUNT })
        .then([{ type: 'HoldReleased', data: { holdId: 'h1', amount: cr(3), reason: 'expired' } }]);
      expect(balanceView(state, NOW)).toMatchObject({ available: cr(10), held: 0n });
    });

    it('expires credits a hold gives back to a bucket that expired meanwhile', () => {
      const hold = { type: 'HoldPlaced' as const, data: { holdId: 'h1', amount: cr(5), perBucket: [share('promo', 'promotional', cr(5))], expiresAt: '2025-03-10T13:00:00.000Z' } };
      given([...history, hold])
        .when({ type: 'ReleaseHold', accountId: ACCOUNT, holdId: 'h1', reason: 'released' })
        .then([
          { type: 'HoldReleased', data: { holdId: 'h1', amount: cr(5), reason: 'released' } },
          promoExpired,
        ]);
    });
  });

  describe('rule 9: holds', () => {
    const history = [
      opened,
      ...cycleWithAllowance('c1', cr(10), { thresholds: [] }),
      granted('g1', 'purchased', cr(10)),
    ];
    const placed = (holdId: string, amount: bigint, perBucket: ReturnType<typeof share>[]) => ({
      type: 'HoldPlaced' as const,
      data: { holdId, amount, perBucket, expiresAt: '2025-03-10T12:05:00.000Z' },
    });
    const held = [...history, placed('h1', cr(12), [share('allowance:c1', 'allowance', cr(10)), share('g1', 'purchased', cr(2))])];

    it('reserves the amount from buckets in deduction order', () => {
      const { state } = given(history)
        .when(holdCommand('h1', cr(12)))
        .then([placed('h1', cr(12), [share('allowance:c1', 'allowance', cr(10)), share('g1', 'purchased', cr(2))])]);
      expect(balanceView(state, NOW)).toMatchObject({ available: cr(8), held: cr(12) });
    });

    it('refuses a hold larger than what is available', () => {
      const error = given(held).when(holdCommand('h2', cr(9))).thenThrows('INSUFFICIENT_CREDITS', { required: cr(9), available: cr(8) });
      expect(error).toBeInstanceOf(InsufficientCreditsError);
      expect(error).toMatchObject({ required: cr(9), available: cr(8) });
    });

    it('settles a hold: reservations go back, the actual amount is debited in order', () => {
      given(held)
        .when(usageCommand('u1', cr(11), { holdId: 'h1' }))
        .then([
          { type: 'HoldSettled', data: { holdId: 'h1', usageId: 'u1', heldAmount: cr(12), settledAmount: cr(11), releasedAmount: cr(1) } },
          debited('u1', cr(11), [share('allowance:c1', 'allowance', cr(10)), share('g1', 'purchased', cr(1))], { holdId: 'h1' }),
        ]);
    });

    it('settles for more than was held', () => {
      given(held)
        .when(usageCommand('u1', cr(15), { holdId: 'h1' }))
        .then([
          { type: 'HoldSettled', data: { holdId: 'h1', usageId: 'u1', heldAmount: cr(12), settledAmount: cr(15), releasedAmount: 0n } },
          debited('u1', cr(15), [share('allowance:c1', 'allowance', cr(10)), share('g1', 'purchased', cr(5))], { holdId: 'h1' }),
        ]);
    });

    it('a hold resolves at most once: a later usage naming it is debited without it', () => {
      const settled = [
        ...held,
        { type: 'HoldSettled' as const, data: { holdId: 'h1', usageId: 'u1', heldAmount: cr(12), settledAmount: cr(1), releasedAmount: cr(11) } },
        debited('u1', cr(1), [share('allowance:c1', 'allowance', cr(1))], { holdId: 'h1' }),
      ];
      given(settled)
        .when(usageCommand('u2', cr(1), { holdId: 'h1' }))
        .then([debited('u2', cr(1), [share('allowance:c1', 'allowance', cr(1))])]);
      given(history).when(usageCommand('u2', cr(1), { holdId: 'unknown' })).then([debited('u2', cr(1), [share('allowance:c1', 'allowance', cr(1))])]);
    });

    it('releases a hold once', () => {
      const release: AccountCommand = { type: 'ReleaseHold', accountId: ACCOUNT, holdId: 'h1', reason: 'released' };
      const { state } = given(held).when(release).then([{ type: 'HoldReleased', data: { holdId: 'h1', amount: cr(12), reason: 'released' } }]);
      expect(balanceView(state, NOW)).toMatchObject({ available: cr(20), held: 0n });
      expect(decide(release, state, { now: NOW })).toEqual([]);
      given(history).when({ ...release, holdId: 'nope' }).then([]);
    });

    it('a hold that expired before its release is released as expired, once', () => {
      given(held)
        .when({ type: 'ReleaseHold', accountId: ACCOUNT, holdId: 'h1', reason: 'released' }, at('2025-03-10T12:05:00.000Z'))
        .then([{ type: 'HoldReleased', data: { holdId: 'h1', amount: cr(12), reason: 'expired' } }]);
    });

    it('expiring a hold releases it as expired once it is due, once, and never before its time', () => {
      const expire: AccountCommand = { type: 'ReleaseHold', accountId: ACCOUNT, holdId: 'h1', reason: 'expired' };
      given(held).when(expire, at('2025-03-10T12:04:59.999Z')).then([]);
      const { state } = given(held)
        .when(expire, at('2025-03-10T12:05:00.000Z'))
        .then([{ type: 'HoldReleased', data: { holdId: 'h1', amount: cr(12), reason: 'expired' } }]);
      expect(balanceView(state, at('2025-03-10T12:05:00.000Z').now)).toMatchObject({ available: cr(20), held: 0n });
      expect(decide(expire, state, at('2025-03-10T12:06:00.000Z'))).toEqual([]);
      given(history).when({ ...expire, holdId: 'nope' }).then([]);
    });

    // Usage that came while credits were reserved is carried as overdraft; when the hold gives them back, they pay it
    // (as a grant would), or else they would expire with the cycle while the next allowance paid the debt.
    describe('credits a hold gives back pay the overdraft carried while they were reserved', () => {
      const cycle = [opened, ...cycleWithAllowance('c1', cr(100), { thresholds: [] })];
      const reserved = [...cycle, ...given(cycle).when(holdCommand('h1', cr(80))).events()];
      const overdrawn = [...reserved, ...given(reserved).when(usageCommand('u2', cr(50))).events()];
      const repaid = (amount: bigint, remaining: bigint) => ({ type: 'OverdraftSettled' as const, data: { grantId: 'allowance:c1', amount, remaining, fromBucket: true } });

      it('on release: the hold gives back 80, 30 of it pays the overdraft', () => {
        expect(balanceView(fold(overdrawn), NOW)).toMatchObject({ available: 0n, held: cr(80), overdraft: cr(30) });
        const { state } = given(overdrawn)
          .when({ type: 'ReleaseHold', accountId: ACCOUNT, holdId: 'h1', reason: 'released' })
          .then([{ type: 'HoldReleased', data: { holdId: 'h1', amount: cr(80), reason: 'released' } }, repaid(cr(30), 0n)]);
        expect(balanceView(state, NOW)).toMatchObject({ available: cr(50), held: 0n, overdraft: 0n });
      });

      it('on a settlement for less than was held: what is left after the debit pays what it can', () => {
        const { state } = given(overdrawn)
          .when(usageCommand('u3', cr(60), { holdId: 'h1' }))
          .then([
            { type: 'HoldSettled', data: { holdId: 'h1', usageId: 'u3', heldAmount: cr(80), settledAmount: cr(60), releasedAmount: cr(20) } },
            debited('u3', cr(60), [share('allowance:c1', 'allowance', cr(60))], { holdId: 'h1' }),
            repaid(cr(20), cr(10)),
          ]);
        expect(balanceView(state, NOW)).toMatchObject({ available: 0n, overdraft: cr(10) }); // 110 used of 100
      });

      it('only what the hold gave back repays: credits the account held apart from it stay where they are', () => {
        // A refund restored 100 beside a debt of 30; a hold of 10 on those credits, released, repays 10 of it, not 30.
        const refunded = [opened, granted('p', 'promotional', cr(100)), debited('u1', cr(100), [share('p', 'promotional', cr(100))]),
          debited('u2', cr(30), [], { overdraft: cr(30) }), { type: 'OverdraftIncurred' as const, data: { usageId: 'u2', amount: cr(30), total: cr(30) } }];
        const restored = [...refunded, ...given(refunded).when({ type: 'RefundUsage', accountId: ACCOUNT, refundId: 'refund:r1', usageId: 'u1', reason: 'bad answer', restoreExpired: false }).events()];
        expect(balanceView(fold(restored), NOW)).toMatchObject({ available: cr(100), overdraft: cr(30) });
        const withHold = [...restored, ...given(restored).when(holdCommand('h9', cr(10))).events()];
        const { state } = given(withHold)
          .when({ type: 'ReleaseHold', accountId: ACCOUNT, holdId: 'h9', reason: 'released' })
          .then([{ type: 'HoldReleased', data: { holdId: 'h9', amount: cr(10), reason: 'released' } }, { type: 'OverdraftSettled', data: { grantId: 'p', amount: cr(10), remaining: cr(20), fromBucket: true } }]);
        expect(balanceView(state, NOW)).toMatchObject({ available: cr(90), overdraft: cr(20) });
      });

      it('when the hold expires: the housekeeping of the next command releases it and repays', () => {
        const later = at('2025-03-10T12:06:00.000Z');
        given(overdrawn)
          .when(grantCommand('g9', 'promotional', cr(1)), later)
          .then([{ type: 'HoldReleased', data: { holdId: 'h1', amount: cr(80), reason: 'expired' } }, repaid(cr(30), 0n), granted('g9', 'promotional', cr(1), { grantedAt: later.now.toISOString() })]);
        expect(balanceView(fold(overdrawn), later.now)).toMatchObject({ available: cr(50), overdraft: 0n });
      });
    });
  });

  describe('rule 10: usedThisCycle and the balance view', () => {
    it('accumulates the debited amounts of the cycle, overdraft included', () => {
      const state = fold([
        opened,
        ...cycleWithAllowance('c1', cr(10)),
        debited('u1', cr(4), [share('allowance:c1', 'allowance', cr(4))]),
        debited('u2', cr(8), [share('allowance:c1', 'allowance', cr(6))], { overdraft: cr(2) }),
        overdraftIncurred('u2', cr(2), cr(2)),
      ]);
      expect(balanceView(state, NOW)).toEqual({
        available: 0n,
        byKind: { allowance: 0n, promotional: 0n, purchased: 0n },
        held: 0n,
        overdraft: cr(2),
        allocation: cr(10),
        usedThisCycle: cr(12),
        cycleId: 'c1',
        cycleEnd: CYCLE_END,
        unlimited: false,
        planId: 'pro',
      });
    });

    it('leaves out what is due at the time of reading, even before housekeeping ran', () => {
      const state = fold([opened, granted('promo', 'promotional', cr(5), { expiresAt: '2025-03-11T00:00:00.000Z' }), granted('g1', 'purchased', cr(1))]);
      expect(balanceView(state, NOW).available).toBe(cr(6));
      expect(balanceView(state, new Date('2025-03-11T00:00:00.000Z'))).toMatchObject({ available: cr(1), byKind: { promotional: 0n, purchased: cr(1) } });
      expect(balanceView(initialState, NOW)).toMatchObject({ available: 0n, cycleId: null, planId: null, unlimited: false });
    });
  });

  describe('rule 11: input errors', () => {
    it('refuses grants and holds that are not positive, and negative usage', () => {
      given([opened]).when(grantCommand('g1', 'purchased', 0n)).thenThrows('INVALID_AMOUNT');
      given([opened]).when(grantCommand('g1', 'purchased', -5n)).thenThrows('INVALID_AMOUNT');
      given([opened]).when(holdCommand('h1', 0n)).thenThrows('INVALID_AMOUNT');
      given([opened]).when(usageCommand('u1', -1n)).thenThrows('INVALID_AMOUNT');
    });

    it('refuses money that is not a bigint', () => {
      given([opened])
        .when(grantCommand('g1', 'purchased', 5 as unknown as bigint))
        .thenThrows('INVALID_AMOUNT');
    });

    it('accepts a usage of 0', () => {
      given([opened, granted('g1', 'purchased', cr(1))]).when(usageCommand('u1', 0n)).then([debited('u1', 0n, [])]);
    });

    it('throws AccountError with a code and details', () => {
      try {
        decide(grantCommand('g1', 'purchased', 0n), initialState, { now: NOW });
        throw new Error('expected a throw');
      } catch (error) {
        expect(error).toBeInstanceOf(AccountError);
        expect(error).toMatchObject({ code: 'INVALID_AMOUNT', details: { field: 'amount', amount: 0n } });
      }
    });

    it('refuses a command type it does not know (the switch is exhaustive at compile time too)', () => {
      expect(() => decide({ type: 'Nope', accountId: ACCOUNT } as unknown as AccountCommand, initialState, { now: NOW })).toThrow(/unexpected/);
    });
  });
  describe('rule 12: upper bounds (one amount at most MAX_AMOUNT_MICROS, every balance at most MAX_BALANCE_MICROS)', () => {
    const MAX = MAX_AMOUNT_MICROS;
    /** An account holding exactly the balance bound: 100 purchases of the largest amount. */
    const full = Array.from({ length: Number(MAX_BALANCE_MICROS / MAX) }, (_, index) => granted(`full-${index}`, 'purchased', MAX));

    it('grants exactly the per-amount bound', () => {
      given([opened]).when(grantCommand('g1', 'purchased', MAX)).then([granted('g1', 'purchased', MAX)]);
    });

    it('refuses a grant, a hold, a usage debit and an allocation of one micro-credit above it with AMOUNT_OUT_OF_RANGE', () => {
      given([opened]).when(grantCommand('g1', 'purchased', MAX + 1n)).thenThrows('AMOUNT_OUT_OF_RANGE', { field: 'amount', amount: MAX + 1n, max: MAX });
      given([opened]).when(grantCommand('g1', 'promotional', 99_999_999_999_999_999_999_999_000_000n)).thenThrows('AMOUNT_OUT_OF_RANGE');
      given([opened, granted('g1', 'purchased', MAX)]).when(holdCommand('h1', MAX + 1n)).thenThrows('AMOUNT_OUT_OF_RANGE');
      given([opened]).when(usageCommand('u1', MAX + 1n)).thenThrows('AMOUNT_OUT_OF_RANGE');
      given([opened]).when(startCycleCommand('c1', MAX + 1n)).thenThrows('AMOUNT_OUT_OF_RANGE', { field: 'allocation' });
    });

    it('fills an account up to exactly the balance bound', () => {
      const [last, ...rest] = [...full].reverse();
      given([opened, ...rest]).when(grantCommand(last.data.grantId, 'purchased', MAX)).then([last]);
    });

    it('refuses a grant that would take the balance above the bound with BALANCE_LIMIT_EXCEEDED, and changes nothing', () => {
      given([opened, ...full])
        .when(grantCommand('one-more', 'promotional', 1n))
        .thenThrows('BALANCE_LIMIT_EXCEEDED', { balance: 'balance', wouldBe: MAX_BALANCE_MICROS + 1n, max: MAX_BALANCE_MICROS });
    });

    it('counts held credits in the balance: they come back to the account when the hold is released', () => {
      const { events, state } = given([opened, ...full]).when(holdCommand('h1', MAX)).then([
        { type: 'HoldPlaced', data: { holdId: 'h1', amount: MAX, perBucket: [share('full-0', 'purchased', MAX)], expiresAt: '2025-03-10T12:05:00.000Z' } },
      ]);
      expect(balanceView(state, NOW)).toMatchObject({ available: MAX_BALANCE_MICROS - MAX, held: MAX });
      given([opened, ...full, ...events]).when(grantCommand('g2', 'promotional', 1n)).thenThrows('BALANCE_LIMIT_EXCEEDED');
    });

    it('lets a grant in when the part that pays an overdraft keeps the balance within the bound', () => {
      given([opened, ...full.slice(1), overdraftIncurred('u0', cr(1), cr(1))])
        .when(grantCommand('g1', 'purchased', MAX))
        .then([
          { type: 'OverdraftSettled', data: { grantId: 'g1', amount: cr(1), remaining: 0n } },
          granted('g1', 'purchased', MAX - cr(1), { overdraftSettled: cr(1) }),
        ]);
    });

    it('given an account at the balance bound, when a cycle starts, then it starts with the part of the allowance that fits (none): never refused, so the account is not left between cycles', () => {
      const renewal = given([opened, ...full]).when(startCycleCommand('c1', cr(1))).events();
      expect(renewal.map((event) => event.type)).toEqual(['CycleStarted']);
      expect(given([opened, ...full, ...renewal]).state().cycle?.cycleId).toBe('c1');
      // Usage is then paid from the purchased credits, not deferred as in a renewal gap.
      const spent = given([opened, ...full, ...renewal]).when(usageCommand('u1', cr(1))).events();
      expect(spent.map((event) => event.type)).toEqual(['UsageDebited']);
      // One credit spent: of the next cycle's two, the one that fits is granted.
      const next = given([opened, ...full, ...renewal, ...spent]).when(startCycleCommand('c2', cr(2))).events();
      expect(next.filter((event) => event.type === 'CreditsGranted').map((event) => (event.data as { amount: bigint }).amount)).toEqual([cr(1)]);
    });

    it('refuses usage that would take used-this-cycle above the bound (unlimited plans never run out of credits)', () => {
      const unlimited = [opened, cycleStarted('c1', 0n, { unlimited: true })];
      const spent = Array.from({ length: 100 }, (_, index) => debited(`spent-${index}`, MAX, []));
      const { state } = given([...unlimited, ...spent.slice(1)]).when(usageCommand('spent-0', MAX)).then([debited('spent-0', MAX, [])]);
      expect(state.usedThisCycle).toBe(MAX_BALANCE_MICROS);
      given([...unlimited, ...spent])
        .when(usageCommand('u-over', 1n))
        .thenThrows('BALANCE_LIMIT_EXCEEDED', { balance: 'usedThisCycle', wouldBe: MAX_BALANCE_MICROS + 1n });
    });

    it('refuses usage that would carry an overdraft above the bound, and writes it off under a write-off plan', () => {
      const owing = [opened, overdraftIncurred('u0', MAX_BALANCE_MICROS, MAX_BALANCE_MICROS)];
      given(owing).when(usageCommand('u1', 1n)).thenThrows('BALANCE_LIMIT_EXCEEDED', { balance: 'overdraft' });
      // Owed from before the cycle, the overdraft is the cycle's use, at the bound already: nothing more can be used.
      given([...owing, cycleStarted('c1', 0n, { overdraftPolicy: 'write-off' })]).when(usageCommand('u1', 1n)).thenThrows('BALANCE_LIMIT_EXCEEDED', { balance: 'usedThisCycle' });
      given([opened, cycleStarted('c1', 0n, { overdraftPolicy: 'write-off' }), overdraftIncurred('u0', MAX_BALANCE_MICROS, MAX_BALANCE_MICROS)])
        .when(usageCommand('u1', 1n))
        .then([
          debited('u1', 1n, [], { overdraft: 1n }),
          { type: 'OverdraftWrittenOff', data: { usageId: 'u1', amount: 1n } },
          depleted('u1', 'c1'),
        ]);
    });
  });
});

function overdraftIncurred(usageId: string, amount: bigint, total: bigint) {
  return { type: 'OverdraftIncurred' as const, data: { usageId, amount, total } };
}

function depleted(usageId: string, cycleId?: string) {
  return { type: 'CreditsDepleted' as const, data: { ...(cycleId !== undefined && { cycleId }), usageId } };
}

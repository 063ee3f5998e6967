import { spec } from '@tally/decider/testing';
import { accountDecider } from './account.decider';
import type { RefundUsage, VoidGrant } from './account.commands';
import type { AccountEvent, UsageRefunded } from './account.events';
import { available } from './account.state';
import { balanceView } from './account-balance.view';
import {
  ACCOUNT,
  AT,
  NOW,
  cr,
  cycleWithAllowance,
  debited,
  granted,
  holdCommand,
  opened,
  share,
  usageCommand,
} from './testing/account.fixtures';

/** Corrections (README "Corrections"): given/when/then for each rule of refunds and voids. */
const { given } = spec(accountDecider, { now: NOW });
const at = (iso: string) => ({ now: new Date(iso) });

const refund = (key: string, usageId: string, amount?: bigint, extra: Partial<RefundUsage> = {}): RefundUsage => ({
  type: 'RefundUsage',
  accountId: ACCOUNT,
  refundId: `refund:${key}`,
  usageId,
  ...(amount !== undefined && { amount }),
  reason: 'wrong model billed',
  restoreExpired: false,
  ...extra,
});

const refunded = (key: string, usageId: string, amount: bigint, extra: Partial<UsageRefunded['data']> = {}): UsageRefunded => ({
  type: 'UsageRefunded',
  data: {
    refundId: `refund:${key}`,
    usageId,
    amount,
    restored: [],
    forfeited: [],
    overdraftReduced: 0n,
    uncharged: 0n,
    perModel: [], // the fixtures' pricing line is priced 0: nothing to take off a model
    restoreExpired: false,
    reason: 'wrong model billed',
    refundedAt: AT,
    ...extra,
  },
});

const voidCommand = (key: string, grantId: string, reason = 'granted by mistake'): VoidGrant => ({
  type: 'VoidGrant',
  accountId: ACCOUNT,
  voidId: `void:${key}`,
  grantId,
  reason,
});

const voided = (key: string, grantId: string, kind: 'promotional' | 'purchased', amount: bigint, reason = 'granted by mistake'): AccountEvent => ({
  type: 'GrantVoided',
  data: { voidId: `void:${key}`, grantId, bucketId: grantId, kind, amount, reason, voidedAt: AT },
});

/** promo 3 (no expiry) and purchased 10; u1 costs 5: 3 from promo, 2 from purchased. */
const spentAcrossTwo: AccountEvent[] = [
  opened,
  granted('promo', 'promotional', cr(3)),
  granted('purchase:p1', 'purchased', cr(10)),
  debited('u1', cr(5), [share('promo', 'promotional', cr(3)), share('purchase:p1', 'purchased', cr(2))]),
];

describe('corrections: refunding a usage debit', () => {
  it('a full refund gives each bucket back what the debit took from it, in one event', () => {
    const { state } = given(spentAcrossTwo)
      .when(refund('r1', 'u1'))
      .then([refunded('r1', 'u1', cr(5), { restored: [share('purchase:p1', 'purchased', cr(2)), share('promo', 'promotional', cr(3))] })]);
    // In the order they were granted (the promotional bucket, emptied by u1, goes back before the purchase).
    expect(state.buckets.map((b) => [b.bucketId, b.amount])).toEqual([
      ['promo', cr(3)],
      ['purchase:p1', cr(10)],
    ]);
    expect(available(state)).toBe(cr(13));
  });

  it('a partial refund unwinds the debit from its end: the last bucket it took from gets its credits back first', () => {
    given(spentAcrossTwo)
      .when(refund('r1', 'u1', cr(3)))
      .then([
        refunded('r1', 'u1', cr(3), {
          requestedAmount: cr(3),
          restored: [share('purchase:p1', 'purchased', cr(2)), share('promo', 'promotional', cr(1))],
        }),
      ]);
  });

  it('partial refunds add up; a refund above what is left is refused with REFUND_EXCEEDS_DEBIT naming what is left', () => {
    const history = [
      ...spentAcrossTwo,
      refunded('r1', 'u1', cr(2), { requestedAmount: cr(2), restored: [share('purchase:p1', 'purchased', cr(2))] }),
      refunded('r2', 'u1', cr(2), { requestedAmount: cr(2), restored: [share('promo', 'promotional', cr(2))] }),
    ];
    given(history).when(refund('r3', 'u1', cr(2))).thenThrows('REFUND_EXCEEDS_DEBIT', { field: 'amount', refundable: cr(1), requested: cr(2) });
    given(history)
      .when(refund('r3', 'u1'))
      .then([refunded('r3', 'u1', cr(1), { restored: [share('promo', 'promotional', cr(1))] })]);
  });

  it('without an amount it refunds all that is left; with nothing left that is REFUND_EXCEEDS_DEBIT', () => {
    const history = [...spentAcrossTwo, refunded('r1', 'u1', cr(5), { restored: [share('purchase:p1', 'purchased', cr(2)), share('promo', 'promotional', cr(3))] })];
    given(history).when(refund('r2', 'u1')).thenThrows('REFUND_EXCEEDS_DEBIT', { refundable: 0n });
  });

  it('refuses a usage the account never debited (USAGE_NOT_FOUND), and on an account never seen opens nothing', () => {
    given(spentAcrossTwo).when(refund('r1', 'u-unknown')).thenThrows('USAGE_NOT_FOUND', { field: 'usageId' });
    given([]).when(refund('r1', 'u1')).thenThrows('USAGE_NOT_FOUND');
  });

  it('is idempotent by key: the same request again decides nothing (even once all is refunded); other content is IDEMPOTENCY_CONFLICT', () => {
    const { state } = given(spentAcrossTwo).when(refund('r1', 'u1')).then([
      refunded('r1', 'u1', cr(5), { restored: [share('purchase:p1', 'purchased', cr(2)), share('promo', 'promotional', cr(3))] }),
    ]);
    const after = given([...spentAcrossTwo, refunded('r1', 'u1', cr(5), { restored: [share('purchase:p1', 'purchased', cr(2)), share('promo', 'promotional', cr(3))] })]);
    after.when(refund('r1', 'u1')).then([]);
    after.when(refund('r1', 'u1', cr(1))).thenThrows('IDEMPOTENCY_CONFLICT');
    after.when(refund('r1', 'u1', undefined, { reason: 'another reason' })).thenThrows('IDEMPOTENCY_CONFLICT');
    expect(available(state)).toBe(cr(13));
  });

  it('requires a reason of 1-500 characters and a positive amount', () => {
    given(spentAcrossTwo).when(refund('r1', 'u1', undefined, { reason: ' ' })).thenThrows('INVALID_COMMAND', { field: 'reason' });
    given(spentAcrossTwo).when(refund('r1', 'u1', undefined, { reason: 'x'.repeat(501) })).thenThrows('INVALID_COMMAND', { field: 'reason' });
    // Characters as the API's schema counts them: an emoji, or one with its variation selector, is one.
    expect(given(spentAcrossTwo).when(refund('r1', 'u1', undefined, { reason: '😀'.repeat(500) })).events().map((event) => event.type)).toEqual(['UsageRefunded']);
    expect(given(spentAcrossTwo).when(refund('r2', 'u1', undefined, { reason: '❤️'.repeat(500) })).events().map((event) => event.type)).toEqual(['UsageRefunded']);
    given(spentAcrossTwo).when(refund('r3', 'u1', undefined, { reason: '😀'.repeat(501) })).thenThrows('INVALID_COMMAND', { field: 'reason' });
    given(spentAcrossTwo).when(refund('r1', 'u1', 0n)).thenThrows('INVALID_AMOUNT');
  });

  it('recreates a bucket the debit emptied (a purchase spent in full), with its kind', () => {
    const { state } = given([opened, granted('purchase:p1', 'purchased', cr(2)), debited('u1', cr(2), [share('purchase:p1', 'purchased', cr(2))])])
      .when(refund('r1', 'u1', cr(1)))
      .then([refunded('r1', 'u1', cr(1), { requestedAmount: cr(1), restored: [share('purchase:p1', 'purchased', cr(1))] })]);
    expect(balanceView(state, NOW).byKind.purchased).toBe(cr(1));
  });

  it('refunds a debit one bucket paid in whole for one model (kept as the two ids) as it refunds one kept as lists', () => {
    const pricing = { rateCardVersion: 'rc-1', lines: [{ model: 'gpt-x', feature: 'chat', amount: cr(2) }] };
    const paidByOne = debited('u1', cr(2), [share('purchase:p1', 'purchased', cr(2))], { pricing });
    const { state } = given([opened, granted('purchase:p1', 'purchased', cr(2)), paidByOne])
      .when(refund('r1', 'u1', cr(1)))
      .then([
        refunded('r1', 'u1', cr(1), {
          requestedAmount: cr(1),
          restored: [share('purchase:p1', 'purchased', cr(1))],
          perModel: [{ model: 'gpt-x', amount: cr(1) }],
        }),
      ]);
    expect(state.debits.get('u1')).toMatchObject({ perBucket: 'purchase:p1', lines: 'gpt-x', refunded: cr(1) });
  });

  it('puts a recreated bucket back in its place: credits of the same kind are still spent oldest purchase first', () => {
    // p1 emptied by u1 and refunded in full; p2 bought after it. The next usage takes from p1, as before u1.
    const history = [
      opened,
      granted('purchase:p1', 'purchased', cr(1)),
      granted('purchase:p2', 'purchased', 1n),
      debited('u1', cr(1), [share('purchase:p1', 'purchased', cr(1))]),
      refunded('r1', 'u1', cr(1), { restored: [share('purchase:p1', 'purchased', cr(1))] }),
    ];
    given(history)
      .when(usageCommand('u2', 1n))
      .then([debited('u2', 1n, [share('purchase:p1', 'purchased', 1n)], { debitedAt: AT })]);
  });

  describe('expiry: credits of a bucket that has expired since are not resurrected unless asked', () => {
    const lastCycle = [
      opened,
      ...cycleWithAllowance('c1', cr(10), { periodStart: '2025-02-01T00:00:00.000Z', periodEnd: '2025-03-01T00:00:00.000Z' }),
      debited('u1', cr(4), [share('allowance:c1', 'allowance', cr(4))]),
      { type: 'CreditsExpired', data: { bucketId: 'allowance:c1', kind: 'allowance', amount: cr(6), reason: 'cycle-reset', expiredAt: '2025-03-01T00:00:00.000Z' } } as AccountEvent,
      ...cycleWithAllowance('c2', cr(10)),
    ];

    it("a share of last cycle's allowance is forfeited: the usage is refunded, the balance does not grow", () => {
      const { state } = given(lastCycle)
        .when(refund('r1', 'u1'))
        .then([refunded('r1', 'u1', cr(4), { forfeited: [share('allowance:c1', 'allowance', cr(4))] })]);
      expect(available(state)).toBe(cr(10));
    });

    it('with restoreExpired it comes back as a new promotional bucket without expiry, never into the current allowance', () => {
      const { state } = given(lastCycle)
        .when(refund('r1', 'u1', undefined, { restoreExpired: true }))
        .then([refunded('r1', 'u1', cr(4), { reissued: { bucketId: 'refund:r1', amount: cr(4) }, restoreExpired: true })]);
      expect(state.buckets.find((b) => b.bucketId === 'refund:r1')).toEqual({ bucketId: 'refund:r1', kind: 'promotional', amount: cr(4) });
      expect(balanceView(state, NOW).byKind).toEqual({ allowance: cr(10), promotional: cr(4), purchased: 0n });
    });

    it('a promotional grant past its expiry counts as expired too (even before the sweep recorded it)', () => {
      given([
        opened,
        granted('promo', 'promotional', cr(5), { expiresAt: '2025-03-10T00:00:00.000Z' }),
        debited('u1', cr(2), [share('promo', 'promotional', cr(2))]),
        { type: 'CreditsExpired', data: { bucketId: 'promo', kind: 'promotional', amount: cr(3), reason: 'expired', expiredAt: '2025-03-10T00:00:00.000Z' } },
      ])
        .when(refund('r1', 'u1'))
        .then([refunded('r1', 'u1', cr(2), { forfeited: [share('promo', 'promotional', cr(2))] })]);
    });

    it('the share of a voided grant is forfeited the same way', () => {
      given([...spentAcrossTwo, voided('v1', 'promo', 'promotional', 0n)])
        .when(refund('r1', 'u1'))
        .then([refunded('r1', 'u1', cr(5), { restored: [share('purchase:p1', 'purchased', cr(2))], forfeited: [share('promo', 'promotional', cr(3))] })]);
    });
  });

  describe('overdraft: the part of the debit no bucket covered is refunded first', () => {
    const inOverdraft: AccountEvent[] = [
      opened,
      granted('promo', 'promotional', cr(1)),
      debited('u1', cr(3), [share('promo', 'promotional', cr(1))], { overdraft: cr(2) }),
      { type: 'OverdraftIncurred', data: { usageId: 'u1', amount: cr(2), total: cr(2) } },
    ];

    it('reduces the overdraft the debit incurred before giving credits back', () => {
      const { state } = given(inOverdraft)
        .when(refund('r1', 'u1', 2_500_000n))
        .then([refunded('r1', 'u1', 2_500_000n, { requestedAmount: 2_500_000n, overdraftReduced: cr(2), restored: [share('promo', 'promotional', 500_000n)] })]);
      expect(state.overdraft).toBe(0n);
      expect(available(state)).toBe(500_000n);
    });

    const paidByPurchase: AccountEvent[] = [
      ...inOverdraft,
      { type: 'OverdraftSettled', data: { grantId: 'purchase:p1', amount: cr(2), remaining: 0n } },
      granted('purchase:p1', 'purchased', cr(8), { overdraftSettled: cr(2) }),
    ];

    it('what a later grant already paid of that overdraft goes back to that grant', () => {
      const { state } = given(paidByPurchase)
        .when(refund('r1', 'u1', cr(2)))
        .then([refunded('r1', 'u1', cr(2), { requestedAmount: cr(2), restored: [share('purchase:p1', 'purchased', cr(2))] })]);
      expect(balanceView(state, NOW).byKind).toMatchObject({ purchased: cr(10), promotional: 0n });
    });

    // The next cycle's allowance paid a usage carried into it; refunded once that allowance has expired, the credits
    // would have expired with it: forfeited, or with restoreExpired a bucket without expiry (never permanent credits
    // made of an allowance otherwise).
    it("what an allowance paid is forfeited once that allowance has expired (reissued with restoreExpired), like a share of it", () => {
      const c2 = { cycleId: 'c2', periodStart: '2025-03-01T00:00:00.000Z', periodEnd: '2025-03-05T00:00:00.000Z' };
      const paidByAllowance: AccountEvent[] = [
        ...inOverdraft,
        { type: 'CycleStarted', data: { ...c2, planId: 'pro', allocation: cr(10), unlimited: false, thresholds: [], overdraftPolicy: 'carry' } },
        { type: 'OverdraftSettled', data: { grantId: 'allowance:c2', amount: cr(2), remaining: 0n } },
        granted('allowance:c2', 'allowance', cr(8), { expiresAt: c2.periodEnd, source: 'plan:pro', overdraftSettled: cr(2) }),
      ];
      const expired = { type: 'CreditsExpired' as const, data: { bucketId: 'allowance:c2', kind: 'allowance' as const, amount: cr(8), reason: 'expired' as const, expiredAt: AT } };
      given(paidByAllowance)
        .when(refund('r1', 'u1', cr(2)))
        .then([expired, refunded('r1', 'u1', cr(2), { requestedAmount: cr(2), forfeited: [share('allowance:c2', 'allowance', cr(2))] })]);
      given(paidByAllowance)
        .when(refund('r1', 'u1', cr(2), { restoreExpired: true }))
        .then([expired, refunded('r1', 'u1', cr(2), { requestedAmount: cr(2), restoreExpired: true, reissued: { bucketId: 'refund:r1', amount: cr(2) } })]);
      // Refunded while that allowance runs, they go back into it.
      given(paidByAllowance)
        .when(refund('r1', 'u1', cr(2)), at('2025-03-04T00:00:00.000Z'))
        .then([refunded('r1', 'u1', cr(2), { requestedAmount: cr(2), restored: [share('allowance:c2', 'allowance', cr(2))], refundedAt: '2025-03-04T00:00:00.000Z' })]);
    });

    // u1 carried 2, u2 carried 3; a purchase of 2 paid the oldest debt, u1's.
    const twoDebts: AccountEvent[] = [
      opened,
      debited('u1', cr(2), [], { overdraft: cr(2) }),
      { type: 'OverdraftIncurred', data: { usageId: 'u1', amount: cr(2), total: cr(2) } },
      debited('u2', cr(3), [], { overdraft: cr(3) }),
      { type: 'OverdraftIncurred', data: { usageId: 'u2', amount: cr(3), total: cr(5) } },
    ];

    it("a refund gives back what its own debit cost: it neither pays another debit's overdraft nor is paid by it", () => {
      const paid = [...twoDebts, { type: 'OverdraftSettled' as const, data: { grantId: 'purchase:p1', amount: cr(2), remaining: cr(3) } }, granted('purchase:p1', 'purchased', 0n, { overdraftSettled: cr(2) })];
      // u1's overdraft was paid by the purchase: back to it; u2's 3 are still owed.
      const { state } = given(paid)
        .when(refund('r1', 'u1'))
        .then([refunded('r1', 'u1', cr(2), { restored: [share('purchase:p1', 'purchased', cr(2))] })]);
      expect(balanceView(state, NOW)).toMatchObject({ available: cr(2), overdraft: cr(3) });
      // u2's is still owed: the refund takes its own 3 off.
      given(paid).when(refund('r2', 'u2')).then([refunded('r2', 'u2', cr(3), { overdraftReduced: cr(3) })]);
    });

    it('a debt taken back while owed is skipped by later payments: the next grant pays the debt after it', () => {
      const u1Refunded = refunded('r1', 'u1', cr(2), { overdraftReduced: cr(2) });
      given(twoDebts).when(refund('r1', 'u1')).then([u1Refunded]);
      given([
        ...twoDebts,
        u1Refunded,
        { type: 'OverdraftSettled', data: { grantId: 'purchase:p1', amount: cr(3), remaining: 0n } },
        granted('purchase:p1', 'purchased', cr(7), { overdraftSettled: cr(3) }),
      ])
        .when(refund('r2', 'u2'))
        .then([refunded('r2', 'u2', cr(3), { restored: [share('purchase:p1', 'purchased', cr(3))] })]);
    });

    it('a tail partly paid: the part still owed is taken off the overdraft, the part paid goes back to its grant', () => {
      given([
        ...inOverdraft,
        { type: 'OverdraftSettled', data: { grantId: 'purchase:p1', amount: cr(1), remaining: cr(1) } },
        granted('purchase:p1', 'purchased', 0n, { overdraftSettled: cr(1) }),
      ])
        .when(refund('r1', 'u1'))
        .then([refunded('r1', 'u1', cr(3), { overdraftReduced: cr(1), restored: [share('purchase:p1', 'purchased', cr(1)), share('promo', 'promotional', cr(1))] })]);
    });

    // Refunds recorded before the debt line reduced the overdraft by as much of their tail as the account owed, which
    // could be another debit's debt: folded, that excess is paid by no grant, and refunding that debit reissues it.
    it("folds a refund recorded under the earlier rule (it took another debit's debt) and refunds that debit by reissue", () => {
      const paid = [...twoDebts, { type: 'OverdraftSettled' as const, data: { grantId: 'purchase:p1', amount: cr(2), remaining: cr(3) } }, granted('purchase:p1', 'purchased', 0n, { overdraftSettled: cr(2) })];
      const earlier = refunded('r1', 'u1', cr(2), { overdraftReduced: cr(2) }); // min(tail 2, overdraft 3): u2's debt
      given([...paid, earlier])
        .when(refund('r2', 'u2'))
        .then([refunded('r2', 'u2', cr(3), { overdraftReduced: cr(1), reissued: { bucketId: 'refund:r2', amount: cr(2) } })]);
    });

    it('a part the plan wrote off, or an unlimited plan never charged, is refunded without moving credits', () => {
      given([
        opened,
        { type: 'PlanChanged', data: { changeId: 'ch1', planId: 'custom', unlimited: true, thresholds: [], overdraftPolicy: 'carry' } },
        debited('u1', cr(3), []),
      ])
        .when(refund('r1', 'u1'))
        .then([refunded('r1', 'u1', cr(3), { uncharged: cr(3) })]);
      given([
        opened,
        { type: 'PlanChanged', data: { changeId: 'ch1', planId: 'free', unlimited: false, thresholds: [], overdraftPolicy: 'write-off' } },
        debited('u1', cr(3), [], { overdraft: cr(3) }),
        { type: 'OverdraftWrittenOff', data: { usageId: 'u1', amount: cr(3) } },
      ])
        .when(refund('r1', 'u1'))
        .then([refunded('r1', 'u1', cr(3), { uncharged: cr(3) })]);
    });
  });

  describe('balances and alerts after a refund', () => {
    const lowAfterUsage: AccountEvent[] = [
      opened,
      ...cycleWithAllowance('c1', cr(100)),
      debited('u1', cr(90), [share('allowance:c1', 'allowance', cr(90))]),
      { type: 'LowCreditThresholdCrossed', data: { thresholdPercent: 20, cycleId: 'c1', available: cr(10), allocation: cr(100) } },
    ];

    it('takes the refund off used-this-cycle and re-arms the thresholds it lifts the balance back above (like a grant)', () => {
      const { state } = given(lowAfterUsage)
        .when(refund('r1', 'u1', cr(50)))
        .then([refunded('r1', 'u1', cr(50), { requestedAmount: cr(50), restored: [share('allowance:c1', 'allowance', cr(50))] })]);
      expect(state.usedThisCycle).toBe(cr(40));
      expect(state.crossedThresholds.has(20)).toBe(false);
      given([...lowAfterUsage, refunded('r1', 'u1', cr(50), { requestedAmount: cr(50), restored: [share('allowance:c1', 'allowance', cr(50))] })])
        .when(usageCommand('u2', cr(45)))
        .then([
          debited('u2', cr(45), [share('allowance:c1', 'allowance', cr(45))]),
          { type: 'LowCreditThresholdCrossed', data: { thresholdPercent: 20, cycleId: 'c1', available: cr(15), allocation: cr(100) } },
        ]);
    });

    it('ends depletion when it gives credits back', () => {
      const { state } = given([
        opened,
        granted('purchase:p1', 'purchased', cr(2)),
        debited('u1', cr(2), [share('purchase:p1', 'purchased', cr(2))]),
        { type: 'CreditsDepleted', data: { usageId: 'u1' } },
      ])
        .when(refund('r1', 'u1'))
        .then([refunded('r1', 'u1', cr(2), { restored: [share('purchase:p1', 'purchased', cr(2))] })]);
      expect(state.depleted).toBe(false);
    });

    it("splits the refund over the usage's models from its last pricing line back (a council answer)", () => {
      const pricing = { rateCardVersion: 'rc', lines: [{ model: 'a', feature: 'council', amount: cr(2) }, { model: 'b', feature: 'council', amount: cr(3) }] };
      given([opened, granted('purchase:p1', 'purchased', cr(10)), debited('u1', cr(5), [share('purchase:p1', 'purchased', cr(5))], { pricing, models: ['a', 'b'] })])
        .when(refund('r1', 'u1', cr(4)))
        .then([
          refunded('r1', 'u1', cr(4), {
            requestedAmount: cr(4),
            restored: [share('purchase:p1', 'purchased', cr(4))],
            perModel: [{ model: 'b', amount: cr(3) }, { model: 'a', amount: cr(1) }],
          }),
        ]);
    });
  });
});

describe('corrections: voiding a grant or a purchase', () => {
  it('removes what is left of it; what was spent stays spent (no overdraft)', () => {
    const { state } = given(spentAcrossTwo)
      .when(voidCommand('v1', 'purchase:p1'))
      .then([voided('v1', 'purchase:p1', 'purchased', cr(8))]);
    expect(available(state)).toBe(0n);
    expect(state.overdraft).toBe(0n);
  });

  it('records the void of a grant spent in full or expired, removing nothing', () => {
    given(spentAcrossTwo).when(voidCommand('v1', 'promo')).then([voided('v1', 'promo', 'promotional', 0n)]);
  });

  it('refuses a grant never credited (GRANT_NOT_FOUND), an allowance (GRANT_NOT_VOIDABLE), and a second void (ALREADY_VOIDED)', () => {
    given(spentAcrossTwo).when(voidCommand('v1', 'grant:nope')).thenThrows('GRANT_NOT_FOUND', { field: 'grantId' });
    given([opened, ...cycleWithAllowance('c1', cr(10))]).when(voidCommand('v1', 'allowance:c1')).thenThrows('GRANT_NOT_VOIDABLE');
    given([...spentAcrossTwo, voided('v1', 'purchase:p1', 'purchased', cr(8))]).when(voidCommand('v2', 'purchase:p1')).thenThrows('ALREADY_VOIDED');
  });

  it('is idempotent by key: the same void again decides nothing; another reason under the key is IDEMPOTENCY_CONFLICT', () => {
    const after = given([...spentAcrossTwo, voided('v1', 'purchase:p1', 'purchased', cr(8))]);
    after.when(voidCommand('v1', 'purchase:p1')).then([]);
    after.when(voidCommand('v1', 'purchase:p1', 'other')).thenThrows('IDEMPOTENCY_CONFLICT');
  });

  it('names only the key in an IDEMPOTENCY_CONFLICT, never the content first sent with it (a reason is free text)', () => {
    const after = given([...spentAcrossTwo, voided('v1', 'purchase:p1', 'purchased', cr(8))]);
    const error = after.when(voidCommand('v1', 'purchase:p1', 'a reason with a secret')).thenThrows('IDEMPOTENCY_CONFLICT') as { message: string; details: unknown };
    expect(error.details).toEqual({ key: 'void:void:v1' });
    expect(JSON.stringify([error.message, error.details])).not.toMatch(/secret|purchase:p1/);
  });

  it('requires a reason', () => {
    given(spentAcrossTwo).when(voidCommand('v1', 'purchase:p1', '')).thenThrows('INVALID_COMMAND', { field: 'reason' });
  });

  it('leaves what open holds reserve on it reserved; what a hold gives back expires at once (reason voided)', () => {
    const held = given([opened, granted('purchase:p1', 'purchased', cr(10))]).when(holdCommand('h1', cr(4))).events();
    const history = [opened, granted('purchase:p1', 'purchased', cr(10)), ...held, voided('v1', 'purchase:p1', 'purchased', cr(6))];
    given(history)
      .when({ type: 'ReleaseHold', accountId: ACCOUNT, holdId: 'h1', reason: 'released' })
      .then([
        { type: 'HoldReleased', data: { holdId: 'h1', amount: cr(4), reason: 'released' } },
        { type: 'CreditsExpired', data: { bucketId: 'purchase:p1', kind: 'purchased', amount: cr(4), reason: 'voided', expiredAt: AT } },
      ]);
  });

  it('a usage settling a hold on a voided grant may still spend what the hold reserved; the rest expires (reason voided)', () => {
    const held = given([opened, granted('purchase:p1', 'purchased', cr(10))]).when(holdCommand('h1', cr(4))).events();
    const history = [opened, granted('purchase:p1', 'purchased', cr(10)), ...held, voided('v1', 'purchase:p1', 'purchased', cr(6))];
    given(history)
      .when(usageCommand('u1', cr(3), { holdId: 'h1' }))
      .then([
        { type: 'HoldSettled', data: { holdId: 'h1', usageId: 'u1', heldAmount: cr(4), settledAmount: cr(3), releasedAmount: cr(1) } },
        debited('u1', cr(3), [share('purchase:p1', 'purchased', cr(3))], { holdId: 'h1' }),
        { type: 'CreditsExpired', data: { bucketId: 'purchase:p1', kind: 'purchased', amount: cr(1), reason: 'voided', expiredAt: AT } },
        { type: 'CreditsDepleted', data: { usageId: 'u1' } },
      ]);
  });

  it('announces a low-credit threshold the void takes the balance below', () => {
    given([opened, ...cycleWithAllowance('c1', cr(100)), granted('grant:promo', 'promotional', cr(50)), debited('u1', cr(90), [share('allowance:c1', 'allowance', cr(90))])])
      .when(voidCommand('v1', 'grant:promo'), at('2025-03-10T12:00:00.000Z'))
      .then([
        voided('v1', 'grant:promo', 'promotional', cr(50)),
        { type: 'LowCreditThresholdCrossed', data: { thresholdPercent: 20, cycleId: 'c1', available: cr(10), allocation: cr(100) } },
      ]);
  });
});

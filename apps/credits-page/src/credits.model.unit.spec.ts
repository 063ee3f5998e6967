import { allowanceUse, balanceFrom, creditAlert, formatCredits, formatPermille, isBelowPercent, lowCreditSentence, mostCreditsFirst, permille, ratio, sumCredits, type Balance } from './credits.model';

const balance = (over: Partial<Balance> = {}): Balance => ({
  accountId: 'acct-1',
  available: 100_000_000n,
  allowance: 100_000_000n,
  promotional: 0n,
  purchased: 0n,
  held: 0n,
  overdraft: 0n,
  allocation: 100_000_000n,
  usedThisCycle: 0n,
  unlimited: false,
  planId: 'pro',
  cycleEnd: '2026-06-01T00:00:00.000Z',
  version: 3,
  ...over,
});

describe('balanceFrom', () => {
  it('reads GET /balance (kinds under byKind, asOfVersion) into micro-credits', () => {
    const b = balanceFrom({
      accountId: 'acct-1', available: '6.998712', byKind: { allowance: '1.5', promotional: '0.498712', purchased: '5' }, held: '0.25', overdraft: '0',
      allocation: '25', usedThisCycle: '23.5', planId: 'plus', unlimited: false, cycleId: 'c-1', cycleEnd: '2026-06-01T00:00:00.000Z', asOfVersion: 12,
    });
    expect(b).toMatchObject({ available: 6_998_712n, allowance: 1_500_000n, promotional: 498_712n, purchased: 5_000_000n, held: 250_000n, allocation: 25_000_000n, usedThisCycle: 23_500_000n, version: 12 });
  });

  it('reads a /balance/stream event (kinds at the top, streamVersion)', () => {
    const b = balanceFrom({
      accountId: 'acct-1', streamVersion: 13, available: '9.994', allowance: '0', promotional: '9.994', purchased: '0', held: '0', overdraft: '0',
      allocation: '0', usedThisCycle: '0.006', cycleId: null, cycleStart: null, cycleEnd: null, planId: null, unlimited: false, updatedAt: '2026-05-01T00:00:00Z',
    });
    expect(b).toMatchObject({ available: 9_994_000n, promotional: 9_994_000n, usedThisCycle: 6_000n, cycleEnd: null, version: 13 });
  });

  it('refuses a float or a missing amount rather than guessing', () => {
    expect(() => balanceFrom({ accountId: 'a', available: 1.5 })).toThrow('available');
    expect(() => balanceFrom({ accountId: 'a', available: '1e3' })).toThrow();
  });
});

describe('creditAlert: the ledger thresholds (strictly below 20% and 5% of the allocation), then insufficient', () => {
  it.each([
    [100_000_000n, 'none'],
    [20_000_000n, 'none'], // exactly 20% is not below it
    [19_999_999n, 'low-20'],
    [5_000_000n, 'low-20'],
    [4_999_999n, 'low-5'],
    [1n, 'low-5'],
    [0n, 'insufficient'],
  ] as const)('available %s of 100 → %s', (available, alert) => {
    expect(creditAlert(balance({ available }))).toBe(alert);
  });

  it('is insufficient in overdraft, and never alerts on an unlimited plan', () => {
    expect(creditAlert(balance({ available: 0n, overdraft: 2_000_000n }))).toBe('insufficient');
    expect(creditAlert(balance({ available: 0n, unlimited: true }))).toBe('none');
  });

  // Between a cycle's end and its renewal usage is carried as overdraft while purchased credits stay: the ledger
  // refuses only what available cannot cover, so the page must not say "Insufficient" while credits are available.
  it('is not insufficient while credits are available, even with a debt carried', () => {
    expect(creditAlert(balance({ available: 50_000_000n, allowance: 0n, purchased: 50_000_000n, overdraft: 200_000n }))).toBe('none');
  });

  // The ledger judges its thresholds on the credits left counting what open holds reserve (a hold reserves, it does
  // not spend): an answer being generated under a large hold is not "almost out", and no email says so either.
  it('counts what open holds reserve as left, as the ledger judges its thresholds; insufficient still on available', () => {
    expect(creditAlert(balance({ available: 4_000_000n, held: 96_000_000n }))).toBe('none');
    expect(creditAlert(balance({ available: 4_000_000n, held: 10_000_000n }))).toBe('low-20');
    expect(creditAlert(balance({ available: 0n, held: 96_000_000n }))).toBe('insufficient');
  });

  it('has no percentage without an allocation (only packs): only the empty state', () => {
    expect(creditAlert(balance({ allocation: 0n, available: 1n }))).toBe('none');
    expect(creditAlert(balance({ allocation: 0n, available: 0n }))).toBe('insufficient');
  });

  it('agrees with the ledger on amounts past any float (100 billion credits)', () => {
    const allocation = 100_000_000_000_000_000n;
    expect(isBelowPercent(allocation / 5n - 1n, 20, allocation)).toBe(true);
    expect(isBelowPercent(allocation / 5n, 20, allocation)).toBe(false);
  });
});

describe('the low-credit banner', () => {
  const format = (micros: bigint) => formatCredits(micros, { locale: 'en' });
  it('names what holds reserve when they count towards the level', () => {
    const reserving = balance({ available: 3_000_000n, held: 4_000_000n });
    expect(creditAlert(reserving)).toBe('low-20');
    expect(lowCreditSentence(reserving, 20, 'credits', format)).toBe('3 credits left and 4 reserved for answers in progress: below 20% of your 100 credits this cycle.');
    expect(lowCreditSentence(balance({ available: 3_000_000n }), 5, 'credits', format)).toBe('3 credits left: below 5% of your 100 credits this cycle.');
  });
});

describe('permille and the allowance bar', () => {
  it('rounds down, clamps to 0..1000', () => {
    expect(permille(1n, 3n)).toBe(333);
    expect(permille(2n, 3n)).toBe(666);
    expect(permille(5n, 3n)).toBe(1000);
    expect(permille(-1n, 3n)).toBe(0);
    expect(permille(1n, 0n)).toBe(0);
  });

  it('shows used of allocation and what is left of the allowance', () => {
    expect(allowanceUse(balance({ usedThisCycle: 81_250_000n, allowance: 18_750_000n }))).toEqual({ used: 81_250_000n, allocation: 100_000_000n, permille: 812, left: 18_750_000n });
    expect(formatPermille(812, 'en')).toBe('81.2%');
  });

  // The ledger spends what expires soonest first: a promotion ending before the cycle goes before the allowance. The
  // bar showed usedThisCycle (every debit, from any bucket) beside what is left of the allowance: plan 100, a promotion
  // of 50 spent, and it read "50 of 100 used (50%) · 100 left". Used and left now add up to the allocation.
  it('counts as used only what the allowance gave: used and left add up to the allocation', () => {
    const promotionSpent = balance({ usedThisCycle: 50_000_000n, allowance: 100_000_000n, promotional: 0n });
    expect(allowanceUse(promotionSpent)).toEqual({ used: 0n, allocation: 100_000_000n, permille: 0, left: 100_000_000n });
    const partly = balance({ usedThisCycle: 60_000_000n, allowance: 90_000_000n });
    expect(allowanceUse(partly)).toEqual({ used: 10_000_000n, allocation: 100_000_000n, permille: 100, left: 90_000_000n });
    // An allowance above the allocation (topped up mid-cycle) is none used, not a negative amount.
    expect(allowanceUse(balance({ allowance: 120_000_000n })).used).toBe(0n);
    expect(formatPermille(1000, 'en')).toBe('100%');
  });

  it('ratio is a bigint division first', () => {
    expect(ratio(1n, 4n)).toBe(0.25);
    expect(ratio(0n, 4n)).toBe(0);
    expect(ratio(10n ** 30n, 10n ** 30n)).toBe(1);
  });
});

describe('formatCredits', () => {
  it('keeps every micro-credit and groups the whole part by locale', () => {
    expect(formatCredits(6_998_712n, { locale: 'en' })).toBe('6.998712');
    expect(formatCredits(1_234_500_000n, { locale: 'en' })).toBe('1,234.5');
    expect(formatCredits(1_234_500_000n, { locale: 'de' })).toBe('1.234,5');
    // One numbering system for the whole number: a locale's own digits in the fraction too, as Intl writes them.
    for (const locale of ['ar-EG', 'hi-IN-u-nu-deva', 'fa']) {
      expect([locale, formatCredits(1_234_500_000n, { locale })]).toEqual([locale, new Intl.NumberFormat(locale).format(1234.5)]);
    }
    expect(formatCredits(100_000_000_000_000_000n, { locale: 'en' })).toBe('100,000,000,000');
    expect(formatCredits(0n, { locale: 'en' })).toBe('0');
  });

  it('cuts extra decimals towards zero (never shows more than there is) and signs history entries', () => {
    expect(formatCredits(9_999_999n, { locale: 'en', maxDecimals: 2 })).toBe('9.99');
    expect(formatCredits(-6_000n, { locale: 'en', signed: true })).toBe('−0.006');
    expect(formatCredits(10_000_000n, { locale: 'en', signed: true })).toBe('+10');
  });

  // Down, for a debit, is away from zero: cut towards zero, a charge of 1.7 read "−1" on a page showing whole credits
  // while one of 0.3 read "−0.3", and the history's rows no longer added up to what was taken.
  it('rounds a debit (negative) away from zero: a charge never reads as less than was taken', () => {
    expect(formatCredits(-1_700_000n, { locale: 'en', maxDecimals: 0, signed: true })).toBe('−2');
    expect(formatCredits(-1_000_000n, { locale: 'en', maxDecimals: 0, signed: true })).toBe('−1');
    expect(formatCredits(-12_345_001n, { locale: 'en', maxDecimals: 2 })).toBe('−12.35');
    // What was spent (the usage totals, positive) goes up the same way.
    expect(formatCredits(1_700_000n, { locale: 'en', maxDecimals: 0, rounding: 'up' })).toBe('2');
    expect(formatCredits(990_000n, { locale: 'en', maxDecimals: 0, rounding: 'up' })).toBe('1');
  });

  it('never shows a nonzero amount as 0 (nor drops its sign): it gets the decimals it needs', () => {
    expect(formatCredits(-4_000n, { locale: 'en', maxDecimals: 2, signed: true })).toBe('−0.004');
    expect(formatCredits(-4_500n, { locale: 'en', maxDecimals: 2, signed: true })).toBe('−0.005');
    expect(formatCredits(600n, { locale: 'en', maxDecimals: 0, rounding: 'up' })).toBe('0.0006');
    expect(formatCredits(400_000n, { locale: 'en', maxDecimals: 0 })).toBe('0.4');
    expect(formatCredits(12_900_000n, { locale: 'en', maxDecimals: 0 })).toBe('12');
  });

  it('rounds what is owed away from zero, so a debt never reads as less than it is', () => {
    expect(formatCredits(500_000n, { locale: 'en', maxDecimals: 0, rounding: 'away-from-zero' })).toBe('1');
    expect(formatCredits(12_000_001n, { locale: 'en', maxDecimals: 2, rounding: 'away-from-zero' })).toBe('12.01');
    expect(formatCredits(12_000_000n, { locale: 'en', maxDecimals: 0, rounding: 'away-from-zero' })).toBe('12');
    expect(formatCredits(999_999_500_000n, { locale: 'en', maxDecimals: 0, rounding: 'away-from-zero' })).toBe('1,000,000');
  });

  it('sums decimal strings exactly', () => {
    expect(sumCredits(['0.1', '0.2', '0.000001'])).toBe(300_001n);
  });
});

describe('mostCreditsFirst', () => {
  it('lists usage rows by credits, most first, and keeps the ledger\'s order between rows of equal credits', () => {
    const rows = [
      { model: 'B-model', credits: '1' },
      { model: 'a-model', credits: '1' },
      { model: 'big', credits: '2.5' },
      { model: 'b-model', credits: '1.0' },
    ];

    expect(mostCreditsFirst(rows).map((row) => row.model)).toEqual(['big', 'B-model', 'a-model', 'b-model']);
  });
});

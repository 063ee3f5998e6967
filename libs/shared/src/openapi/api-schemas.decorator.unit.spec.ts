import fc from 'fast-check';
import { MAX_AMOUNT_MICROS, MAX_BALANCE_MICROS, MICROS_PER_CREDIT, isCreditString, parseCredits } from '@tally/money';
import { CREDIT_STRING_MAX_LENGTH, creditAmountPattern } from './api-schemas.decorator';

/** Strings near the edges: digits around the bound, leading zeros, 0-7 decimals, signs, junk. */
const amountLike = fc.oneof(
  fc.tuple(fc.constantFrom('', '-', '+', '0', '00'), fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.option(fc.stringMatching(/^\d{0,7}$/), { nil: undefined }))
    .map(([prefix, whole, fraction]) => `${prefix}${whole}${fraction === undefined ? '' : `.${fraction}`}`),
  fc.constantFrom('1000000000', '1000000000.0', '1000000000.000001', '999999999.999999', '0', '0.0', '0.000001', '0000000001', '1e3', ' 1', '1.', '.5', `${'0'.repeat(29)}1`, `${'0'.repeat(30)}1`, `${'0'.repeat(36)}1.5`),
  fc.string({ maxLength: 12 }),
);

describe('creditAmountPattern states the bounds of libs/money exactly', () => {
  it.each([
    ['MAX_AMOUNT_MICROS, positive', MAX_AMOUNT_MICROS, true],
    ['MAX_AMOUNT_MICROS', MAX_AMOUNT_MICROS, false],
    ['MAX_BALANCE_MICROS', MAX_BALANCE_MICROS, false],
  ])('%s: the pattern matches exactly the credit strings parseCredits takes within the bound', (_name, max, positive) => {
    const pattern = new RegExp(creditAmountPattern(max, { positive }));
    fc.assert(
      fc.property(amountLike, (value) => {
        const accepted = isCreditString(value) && !value.startsWith('-') && parseCredits(value) <= max && (!positive || parseCredits(value) > 0n);
        expect(pattern.test(value) && value.length <= CREDIT_STRING_MAX_LENGTH).toBe(accepted);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a bound a pattern cannot state', () => {
    expect(() => creditAmountPattern(5n * MICROS_PER_CREDIT)).toThrow(RangeError);
    expect(() => creditAmountPattern(MAX_AMOUNT_MICROS + 1n)).toThrow(RangeError);
  });
});

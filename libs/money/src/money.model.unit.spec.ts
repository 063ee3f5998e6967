import {
  MAX_AMOUNT_MICROS,
  MAX_BALANCE_MICROS,
  MoneyFormatError,
  PG_BIGINT_MAX,
  credits,
  divCeil,
  formatCredits,
  parseCredits,
} from './money.model';

describe('money', () => {
  it.each([
    ['6.998712', 6_998_712n],
    ['0', 0n],
    ['100', 100_000_000n],
    ['0.000001', 1n],
    ['-2.5', -2_500_000n],
    ['12345678901234567890', 12_345_678_901_234_567_890_000_000n],
  ])('parses %s exactly', (text, micros) => {
    expect(parseCredits(text)).toBe(micros);
  });

  it.each(['1e3', '0.0000001', '1.', '.5', ' 1', '1,5', '', 'NaN', '0x10'])('refuses %j', (text) => {
    expect(() => parseCredits(text)).toThrow(MoneyFormatError);
  });

  it('refuses a number even when it looks whole', () => {
    expect(() => parseCredits(5 as unknown as string)).toThrow(MoneyFormatError);
  });

  it.each([
    [6_998_712n, '6.998712'],
    [5_000_000n, '5'],
    [1n, '0.000001'],
    [-2_500_000n, '-2.5'],
    [0n, '0'],
  ])('formats %s as %s and back', (micros, text) => {
    expect(formatCredits(micros)).toBe(text);
    expect(parseCredits(text)).toBe(micros);
  });

  it('converts whole credits and rounds division up', () => {
    expect(credits(100)).toBe(100_000_000n);
    expect(divCeil(10n, 3n)).toBe(4n);
    expect(divCeil(9n, 3n)).toBe(3n);
    expect(divCeil(0n, 7n)).toBe(0n);
  });

  describe('upper bounds', () => {
    it('bounds one amount at 1,000,000,000 credits and a balance at 100,000,000,000 credits', () => {
      expect(formatCredits(MAX_AMOUNT_MICROS)).toBe('1000000000');
      expect(formatCredits(MAX_BALANCE_MICROS)).toBe('100000000000');
    });

    it('keeps the balance bound far enough below PostgreSQL bigint that sums of balances and amounts cannot overflow', () => {
      // A read model row adds up at most a handful of balances; 90 of them still fit.
      expect(90n * MAX_BALANCE_MICROS).toBeLessThan(PG_BIGINT_MAX);
      expect(PG_BIGINT_MAX).toBe(2n ** 63n - 1n);
    });
  });
});

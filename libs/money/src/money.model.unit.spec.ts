import fc from 'fast-check';
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

  describe('the number fast paths (below 2^53) agree with plain bigint arithmetic', () => {
    const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
    const micros = fc.oneof(
      fc.bigInt({ min: -(10n ** 36n), max: 10n ** 36n }),
      fc.bigInt({ min: -MAX_BALANCE_MICROS, max: MAX_BALANCE_MICROS }),
      fc.bigInt({ min: -10_000_000n, max: 10_000_000n }),
      fc.bigInt({ min: -5n, max: 5n }).map((d) => SAFE + d),
      fc.bigInt({ min: -5n, max: 5n }).map((d) => -SAFE + d),
      // Just below a whole credit, where a double quotient would round up to it.
      fc.bigInt({ min: 2n ** 33n, max: SAFE / 1_000_000n }).map((whole) => whole * 1_000_000n - 1n),
    );
    const decimal = fc.tuple(fc.boolean(), fc.stringMatching(/^\d{1,30}$/), fc.option(fc.stringMatching(/^\d{1,6}$/), { nil: undefined }))
      .map(([negative, whole, fraction]) => `${negative ? '-' : ''}${whole}${fraction === undefined ? '' : `.${fraction}`}`);

    it('formatCredits', () => {
      fc.assert(fc.property(micros, (value) => expect(formatCredits(value)).toBe(formatByBigint(value))), { numRuns: 5_000 });
    });

    it('parseCredits refuses exactly what is not a decimal credit string, whatever the characters', () => {
      const nearlyDecimal = fc.stringMatching(/^[-+ .0-9e]{0,14}$/);
      fc.assert(
        fc.property(fc.oneof(nearlyDecimal, fc.string(), decimal), (text) => {
          const refused = refuses(text);
          expect(refused).toBe(!/^-?\d{1,30}(\.\d{1,6})?$/.test(text));
          if (!refused) expect(parseCredits(text)).toBe(parseByBigint(text));
        }),
        { numRuns: 5_000 },
      );
    });

    it('parseCredits, and back', () => {
      fc.assert(
        fc.property(decimal, (text) => {
          expect(parseCredits(text)).toBe(parseByBigint(text));
          expect(parseCredits(formatCredits(parseCredits(text)))).toBe(parseCredits(text));
        }),
        { numRuns: 5_000 },
      );
    });
  });
});

/** The definitions: what formatCredits and parseCredits computed with bigint alone (before their fast paths). */
function formatByBigint(micros: bigint): string {
  const negative = micros < 0n;
  const abs = negative ? -micros : micros;
  const fraction = (abs % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${abs / 1_000_000n}${fraction ? `.${fraction}` : ''}`;
}

function parseByBigint(text: string): bigint {
  const [, sign, whole, fraction = ''] = /^(-)?(\d+)(?:\.(\d+))?$/.exec(text) as RegExpExecArray;
  const micros = BigInt(whole) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
  return sign ? -micros : micros;
}

/** Whether parseCredits refuses `text` with a MoneyFormatError. */
function refuses(text: string): boolean {
  try {
    parseCredits(text);
    return false;
  } catch (error) {
    return error instanceof MoneyFormatError;
  }
}

/**
 * Money in Tally is an integer number of micro-credits (1 credit = 1,000,000 µcr) held as a `bigint`.
 * On the wire it is a decimal string of credits ("6.998712"). Nothing here ever touches a float.
 */
export type Micro = bigint;

export const MICROS_PER_CREDIT = 1_000_000n;
const DECIMALS = 6;

/**
 * Upper bounds. Every amount that enters Tally (a grant, a purchase, an authorization or hold, a priced usage
 * event, a plan allocation, a pack, a rate-card price) is at most MAX_AMOUNT_MICROS; every balance the ledger keeps
 * (available, a bucket kind, held, overdraft, used this cycle) is at most MAX_BALANCE_MICROS. Read models store
 * amounts in PostgreSQL `bigint` (at most PG_BIGINT_MAX ≈ 9.22e18 µcr ≈ 9.2 trillion credits): the balance bound
 * is 92 times below it, so a read model may add up a few balances or thousands of bounded amounts (SUM over rows
 * is `numeric` in PostgreSQL anyway) without ever overflowing, and a value is refused at the edge with a stable
 * code instead of stalling a projection on every retry.
 *
 * 1,000,000,000 credits in one amount and 100,000,000,000 on one account are far above any real purchase or
 * month of AI usage (1 credit = $1 of list price), and far below what any store holds.
 */
export const MAX_AMOUNT_MICROS: Micro = 1_000_000_000n * MICROS_PER_CREDIT;
export const MAX_BALANCE_MICROS: Micro = 100n * MAX_AMOUNT_MICROS;
/** The largest value of a PostgreSQL `bigint` (and of a signed 64-bit integer). */
export const PG_BIGINT_MAX = 9_223_372_036_854_775_807n;
const DECIMAL = /^(-)?(\d{1,30})(?:\.(\d{1,6}))?$/;
/** The number arithmetic of parseCredits and formatCredits (exact below 2^53). */
const MICROS = 1_000_000;
const SAFE_WHOLE_DIGITS = 9;
const MAX_SAFE_MICROS = BigInt(Number.MAX_SAFE_INTEGER);
const [MINUS, DOT, ZERO] = ['-', '.', '0'].map((c) => c.charCodeAt(0));

export class MoneyFormatError extends Error {
  constructor(readonly input: unknown) {
    super(`not a decimal amount of credits with at most ${DECIMALS} decimals: ${JSON.stringify(input)}`);
    this.name = 'MoneyFormatError';
  }
}

/** True when `value` is a decimal credit string that `parseCredits` accepts. */
export function isCreditString(value: unknown): value is string {
  return typeof value === 'string' && DECIMAL.test(value);
}

/** "6.998712" → 6998712n. Rejects floats, exponents, more than 6 decimals and anything that is not a string. */
export function parseCredits(value: string): Micro {
  if (typeof value !== 'string') throw new MoneyFormatError(value);
  const short = parseShortCredits(value);
  if (short !== undefined) return short;
  const match = DECIMAL.exec(value);
  if (!match) throw new MoneyFormatError(value);
  const [, sign, whole, fraction = ''] = match;
  const micros = BigInt(whole) * MICROS_PER_CREDIT + BigInt(fraction.padEnd(DECIMALS, '0'));
  return sign ? -micros : micros;
}

/**
 * parseCredits for an amount of at most 9 whole digits (every amount in practice), read character by character and
 * computed in a double (below 10^15 < 2^53, exact): no match array, no substrings, one BigInt. undefined for
 * anything else, valid or not: DECIMAL decides.
 */
function parseShortCredits(value: string): Micro | undefined {
  const { length } = value;
  const negative = length > 0 && value.charCodeAt(0) === MINUS;
  let i = negative ? 1 : 0;
  let whole = 0;
  for (; i < length; i++) {
    const digit = value.charCodeAt(i) - ZERO;
    if (digit < 0 || digit > 9) break;
    whole = whole * 10 + digit;
  }
  const wholeDigits = i - (negative ? 1 : 0);
  if (wholeDigits === 0 || wholeDigits > SAFE_WHOLE_DIGITS) return undefined;
  let micros = whole * MICROS;
  if (i < length) {
    if (value.charCodeAt(i) !== DOT || length - i - 1 < 1 || length - i - 1 > DECIMALS) return undefined;
    for (let scale = MICROS / 10, j = i + 1; j < length; j++, scale /= 10) {
      const digit = value.charCodeAt(j) - ZERO;
      if (digit < 0 || digit > 9) return undefined;
      micros += digit * scale;
    }
  }
  const result = BigInt(micros);
  return negative ? -result : result;
}

/** 6998712n → "6.998712"; 5000000n → "5"; trailing zeros of the fraction are dropped. */
export function formatCredits(micros: Micro): string {
  // Within ±2^53 the arithmetic is exact in a double (every balance and amount in practice): no BigInt division.
  if (micros >= -MAX_SAFE_MICROS && micros <= MAX_SAFE_MICROS) {
    const value = Number(micros);
    const abs = value < 0 ? -value : value;
    // Both exact: % of integers below 2^53, and the division of an exact multiple.
    let fraction = abs % MICROS;
    const whole = (abs - fraction) / MICROS;
    const text = value < 0 ? `-${whole}` : `${whole}`;
    if (fraction === 0) return text;
    let digits = DECIMALS;
    while (fraction % 10 === 0) {
      fraction /= 10;
      digits -= 1;
    }
    const significant = `${fraction}`;
    return `${text}.${'0'.repeat(digits - significant.length)}${significant}`;
  }
  const negative = micros < 0n;
  const abs = negative ? -micros : micros;
  const whole = abs / MICROS_PER_CREDIT;
  const fraction = (abs % MICROS_PER_CREDIT).toString().padStart(DECIMALS, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/** Whole credits → micro-credits. */
export function credits(whole: bigint | number): Micro {
  if (typeof whole === 'number' && !Number.isSafeInteger(whole)) throw new MoneyFormatError(whole);
  return BigInt(whole) * MICROS_PER_CREDIT;
}

/** Integer division rounding towards +infinity, for non-negative numerators and positive divisors. */
export function divCeil(numerator: bigint, divisor: bigint): bigint {
  if (divisor <= 0n || numerator < 0n) throw new RangeError('divCeil takes a non-negative numerator and a positive divisor');
  return (numerator + divisor - 1n) / divisor;
}

export const minMicro = (a: Micro, b: Micro): Micro => (a < b ? a : b);
export const maxMicro = (a: Micro, b: Micro): Micro => (a > b ? a : b);

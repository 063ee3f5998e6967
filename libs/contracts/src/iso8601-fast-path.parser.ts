/**
 * The answer of validator's `isISO8601(value, options)` for the one shape every Tally timestamp has
 * (`2026-11-21T10:00:00.000Z`: what `Date.prototype.toISOString` writes, with or without a fraction), computed
 * without validator's general expression and its `new Date` round trip for `strict` (about 1 µs per timestamp, four
 * or five per ledger event). Anything else, a field out of its usual range (month 13, hour 24, second 60) or a year
 * before 1000 is left to validator: `undefined` means "ask it". The unit spec holds both to the same answer.
 */
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const [DIGIT_0, HYPHEN, COLON, DOT, T, Z] = ['0', '-', ':', '.', 'T', 'Z'].map((c) => c.charCodeAt(0));

/**
 * `^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?Z$`, read character by character: a regular
 * expression's match array and its six strings were, with the credit amounts', most of what parsing a ledger event
 * allocated.
 */
export function canonicalIso8601(value: string, options: { strict?: boolean } | undefined): boolean | undefined {
  const { length } = value;
  if (length < 20 || value.charCodeAt(length - 1) !== Z) return undefined;
  if (value.charCodeAt(4) !== HYPHEN || value.charCodeAt(7) !== HYPHEN || value.charCodeAt(10) !== T || value.charCodeAt(13) !== COLON || value.charCodeAt(16) !== COLON) return undefined;
  if (length > 20) {
    // A fraction: a dot and at least one digit, up to the Z.
    if (length === 21 || value.charCodeAt(19) !== DOT) return undefined;
    for (let i = 20; i < length - 1; i++) if (digitAt(value, i) < 0) return undefined;
  }
  const year = digits(value, 0, 4);
  const month = digits(value, 5, 2);
  const day = digits(value, 8, 2);
  const hour = digits(value, 11, 2);
  const minute = digits(value, 14, 2);
  const second = digits(value, 17, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return undefined;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return undefined;
  // validator's pattern takes every such string; `strict` then asks whether the day exists in that month
  // (JavaScript dates: the proleptic Gregorian calendar). It builds that date from the year as a number, so a year
  // below 1000 loses its leading zeros and parses as something else: those stay validator's to answer.
  if (!options?.strict) return true;
  if (year < 1000) return undefined;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]);
}

/** The decimal number of `count` digits from `start`; -1 if one of them is not an ASCII digit. */
function digits(value: string, start: number, count: number): number {
  let number = 0;
  for (let i = start; i < start + count; i++) {
    const digit = digitAt(value, i);
    if (digit < 0) return -1;
    number = number * 10 + digit;
  }
  return number;
}

function digitAt(value: string, index: number): number {
  const digit = value.charCodeAt(index) - DIGIT_0;
  return digit >= 0 && digit <= 9 ? digit : -1;
}

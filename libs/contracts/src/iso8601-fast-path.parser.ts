/**
 * The answer of validator's `isISO8601(value, options)` for the one shape every Tally timestamp has
 * (`2026-11-21T10:00:00.000Z`: what `Date.prototype.toISOString` writes, with or without a fraction), computed
 * without validator's general expression and its `new Date` round trip for `strict` (about 1 µs per timestamp, four
 * or five per ledger event). Anything else, a field out of its usual range (month 13, hour 24, second 60) or a year
 * before 1000 is left to validator: `undefined` means "ask it". The unit spec holds both to the same answer.
 */
const CANONICAL = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?Z$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function canonicalIso8601(value: string, options: { strict?: boolean } | undefined): boolean | undefined {
  const match = CANONICAL.exec(value);
  if (!match) return undefined;
  const month = Number(match[2]);
  const day = Number(match[3]);
  if (month < 1 || month > 12 || day < 1 || day > 31 || Number(match[4]) > 23 || Number(match[5]) > 59 || Number(match[6]) > 59) return undefined;
  // validator's pattern takes every such string; `strict` then asks whether the day exists in that month
  // (JavaScript dates: the proleptic Gregorian calendar). It builds that date from the year as a number, so a year
  // below 1000 loses its leading zeros and parses as something else: those stay validator's to answer.
  if (!options?.strict) return true;
  const year = Number(match[1]);
  if (year < 1000) return undefined;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]);
}

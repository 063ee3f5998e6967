import fc from 'fast-check';
import isISO8601 from 'validator/lib/isISO8601';
import { canonicalIso8601 } from './iso8601-fast-path.parser';

const OPTIONS = [undefined, {}, { strict: true }, { strict: false }, { strict: true, strictSeparator: true }];

/** Timestamps in the canonical shape, each field two (or four) digits of anything: Feb 30, month 00 or 13, hour 24, second 60. */
const twoDigits = fc.integer({ min: 0, max: 99 }).map((n) => String(n).padStart(2, '0'));
const canonicalShaped = fc
  .tuple(
    fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, '0')),
    twoDigits, twoDigits, twoDigits, twoDigits, twoDigits,
    fc.option(fc.stringMatching(/^\.\d{1,9}$/), { nil: '' }),
  )
  .map(([year, month, day, hour, minute, second, fraction]) => `${year}-${month}-${day}T${hour}:${minute}:${second}${fraction}Z`);

describe('canonicalIso8601 (the fast path of @IsISO8601)', () => {
  it.each(OPTIONS)('given options %p, answers as validator does wherever it answers at all', (options) => {
    fc.assert(
      fc.property(fc.oneof(canonicalShaped, fc.string(), fc.date({ noInvalidDate: true }).map((date) => date.toISOString())), (value) => {
        const answer = canonicalIso8601(value, options);
        if (answer !== undefined) expect(answer).toBe(isISO8601(value, options));
      }),
      { numRuns: 5_000 },
    );
  });

  it('given a timestamp with one character swapped for a separator, a digit or anything else, answers as validator does wherever it answers', () => {
    const swapped = fc
      .tuple(fc.date({ min: new Date('1000-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), fc.nat(), fc.constantFrom('x', '.', '-', ':', 'T', 'Z', '5', ' ', '+', '٣'))
      .map(([date, at, character]) => {
        const text = date.toISOString();
        const index = at % text.length;
        return `${text.slice(0, index)}${character}${text.slice(index + 1)}`;
      });
    fc.assert(
      fc.property(swapped, fc.constantFrom(...OPTIONS), (value, options) => {
        const answer = canonicalIso8601(value, options);
        if (answer !== undefined) expect({ value, answer }).toEqual({ value, answer: isISO8601(value, options) });
      }),
      { numRuns: 5_000 },
    );
  });

  it('answers every timestamp toISOString writes for years 1000-9999, so the fast path is the one taken', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('1000-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), (date) => {
        expect(canonicalIso8601(date.toISOString(), { strict: true })).toBe(true);
      }),
    );
  });

  it('given days that do not exist, refuses them under strict and leaves other shapes to validator', () => {
    expect(canonicalIso8601('2026-02-29T10:00:00Z', { strict: true })).toBe(false);
    expect(canonicalIso8601('2024-02-29T10:00:00Z', { strict: true })).toBe(true);
    expect(canonicalIso8601('1900-02-29T10:00:00.5Z', { strict: true })).toBe(false);
    expect(canonicalIso8601('2000-02-29T10:00:00.123456Z', { strict: true })).toBe(true);
    expect(canonicalIso8601('2026-04-31T10:00:00Z', { strict: true })).toBe(false);
    expect(canonicalIso8601('2026-04-31T10:00:00Z', { strict: false })).toBe(true);
    expect(canonicalIso8601('2026-13-01T10:00:00Z', { strict: true })).toBeUndefined();
    expect(canonicalIso8601('2026-11-21T24:00:00Z', { strict: true })).toBeUndefined();
    expect(canonicalIso8601('2026-11-21T10:00:00+01:00', { strict: true })).toBeUndefined();
    expect(canonicalIso8601('2026-11-21', { strict: true })).toBeUndefined();
    expect(canonicalIso8601('0999-01-01T00:00:00Z', { strict: true })).toBeUndefined();
  });
});

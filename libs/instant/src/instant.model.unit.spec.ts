import fc from 'fast-check';
import { isInstant, parseInstant } from './instant.model';

describe('isInstant', () => {
  it.each([
    ['2026-11-21T10:00:00.000Z', '2026-11-21T10:00:00.000Z'],
    ['2026-11-21T10:00:00Z', '2026-11-21T10:00:00.000Z'],
    ['2026-11-21T10:00Z', '2026-11-21T10:00:00.000Z'],
    ['2026-11-21T10:00:00+01:00', '2026-11-21T09:00:00.000Z'],
    ['2026-11-21T10:00:00-00:00', '2026-11-21T10:00:00.000Z'],
    ['2026-11-21T10:00:00.1234567Z', '2026-11-21T10:00:00.123Z'],
    ['2026-11-21T10:00:00.123456789+15:59', '2026-11-20T18:01:00.123Z'],
    ['2024-02-29T23:59:59Z', '2024-02-29T23:59:59.000Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
    ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
  ])('takes %s, the instant %s', (value, instant) => {
    expect(isInstant(value)).toBe(true);
    expect(parseInstant(value)?.toISOString()).toBe(instant);
  });

  it.each([
    ['a month', '2026-11'],
    ['a date alone', '2026-11-21'],
    ['a day of the year', '2026-325'],
    ['a week day', '2026-W48-1'],
    ['an hour alone', '2026-12-31T10Z'],
    ['a comma fraction', '2026-12-31T10:00:00,5Z'],
    ['an expanded year', '+2026-12-31T00:00:00Z'],
    ['no offset', '2026-12-31T10:00:00'],
    ['an offset without minutes', '2026-12-31T10:00:00+01'],
    ['an offset without its colon', '2026-12-31T10:00:00+0100'],
    ['the basic format', '20261231T100000Z'],
    ['a space for the T', '2026-12-31 10:00:00Z'],
    ['a lower-case t and z', '2026-12-31t10:00:00z'],
    ['a day the month does not have', '2026-02-29T10:00:00Z'],
    ['day 0', '2026-12-00T10:00:00Z'],
    ['month 13', '2026-13-01T10:00:00Z'],
    ['hour 24', '2026-12-31T24:00:00Z'],
    ['minute 60', '2026-12-31T10:60:00Z'],
    ['a leap second', '2026-12-31T23:59:60Z'],
    ['year 0 (PostgreSQL has none)', '0000-12-31T10:00:00Z'],
    // In range as written, out of it in UTC, where toISOString writes it (0000-…, +010000-…) and PostgreSQL refuses it.
    ['year 1 with an offset that puts it in year 0', '0001-01-01T00:30:00+01:00'],
    ['year 9999 with an offset that puts it in year 10000', '9999-12-31T23:00:00-01:00'],
    ['an offset past PostgreSQL’s ±15:59', '2026-12-31T10:00:00+16:00'],
    ['offset minutes past 59', '2026-12-31T10:00:00+01:60'],
    ['ten fraction digits', '2026-12-31T10:00:00.1234567890Z'],
    ['an empty fraction', '2026-12-31T10:00:00.Z'],
    ['a trailing newline', '2026-12-31T10:00:00Z\n'],
    ['an empty string', ''],
  ])('refuses %s (%j)', (_what, value) => {
    expect(isInstant(value)).toBe(false);
    expect(parseInstant(value)).toBeUndefined();
  });

  it('refuses what is not a string', () => {
    for (const value of [undefined, null, 0, Date.now(), new Date(), {}, []]) expect(isInstant(value)).toBe(false);
  });

  it('takes every instant toISOString writes in years 1-9999, in any offset it can be written in, as that instant', () => {
    const instants = fc.date({ min: new Date('0001-01-02T00:00:00Z'), max: new Date('9999-12-30T00:00:00Z'), noInvalidDate: true });
    const offsets = fc.integer({ min: -(15 * 60 + 59), max: 15 * 60 + 59 });
    fc.assert(
      fc.property(instants, offsets, (instant, offsetMinutes) => {
        const local = new Date(instant.getTime() + offsetMinutes * 60_000).toISOString().slice(0, -1);
        const sign = offsetMinutes < 0 ? '-' : '+';
        const offset = `${sign}${String(Math.floor(Math.abs(offsetMinutes) / 60)).padStart(2, '0')}:${String(Math.abs(offsetMinutes) % 60).padStart(2, '0')}`;
        expect(parseInstant(instant.toISOString())?.getTime()).toBe(instant.getTime());
        expect(parseInstant(`${local}${offset}`)?.getTime()).toBe(instant.getTime());
      }),
    );
  });
});

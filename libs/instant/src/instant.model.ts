/**
 * An instant as Tally takes it on the wire: a calendar date, a time of day and an explicit offset (RFC 3339's
 * date-time, its seconds and fraction optional): `2026-11-21T10:00:00Z`, `2026-11-21T10:00+01:00`,
 * `2026-11-21T10:00:00.1234567Z`. JavaScript's `Date`, luxon and PostgreSQL's `timestamptz` all read this shape, and
 * read it as the same instant. ISO 8601 allows more, and class-validator's `isISO8601` accepts it: a month
 * (`2026-11`), a day of the year (`2026-325`), a week day (`2026-W48-1`), an hour alone (`2026-11-21T10Z`), a comma
 * fraction, an expanded year (`+2026-…`), no offset at all (local time: the reading process's zone, or the database
 * session's). Those the readers refuse or read differently: `Date` cannot parse a week day (an uncaught RangeError, a
 * 500), PostgreSQL refuses a month without its day (a projection that retries forever), `2026-012` is 1 December
 * to `Date` and 12 January to PostgreSQL. So every edge takes this shape only, within the range all of them hold:
 * years 0001-9999 (PostgreSQL has no year 0) and offsets up to ±15:59 (PostgreSQL's limit; real zones span −12:00
 * to +14:00).
 */
export const INSTANT_PATTERN = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

/** What an edge says of a value that is not an instant (the field is named beside it). */
export const INSTANT_RULE = 'must be an ISO-8601 instant with an offset, e.g. 2026-11-21T10:00:00Z or 2026-11-21T10:00:00+01:00';

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The first and last instants every reader holds: years 0001-9999 in UTC too, where toISOString writes them. */
const EARLIEST = Date.parse('0001-01-01T00:00:00.000Z');
const LATEST = Date.parse('9999-12-31T23:59:59.999Z');

/** Whether `value` is an instant of the shape and range above, a day that exists in its month included. */
export function isInstant(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const match = INSTANT_PATTERN.exec(value);
  if (match === null) return false;
  // Groups: year, month, day, hour, minute, then the optional second and the offset's hours and minutes (0 if absent).
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = match.slice(1).map((field) => (field === undefined ? 0 : Number(field)));
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const daysInMonth = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
  return (
    year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth &&
    hour <= 23 && minute <= 59 && second <= 59 && offsetHours <= 15 && offsetMinutes <= 59 &&
    withinYears(Date.parse(value))
  );
}

/** Whether an instant falls in years 0001-9999 in UTC (an offset can move 0001-01-01T00:30+01:00 into year 0). */
function withinYears(time: number): boolean {
  return time >= EARLIEST && time <= LATEST;
}

/** The instant `value` names, or undefined when it is not one (see `isInstant`). */
export function parseInstant(value: unknown): Date | undefined {
  return isInstant(value) ? new Date(value) : undefined;
}

import { parseInstant as instantOf } from '@tally/instant';
import { canonicalZone, isValidZone } from '@tally/subscription-domain';
import { DateTime } from 'luxon';
import { checkAccountId } from '../../accounts/account-id.decorator';
import { TRANSACTION_TYPES, type TransactionType } from '@tally/ledger-read-models';
import { invalidParam } from './history.errors';

/** Pure parsing of the history endpoints' path and query parameters; every refusal names its field. */

export { checkAccountId };

export const PERIODS = ['7d', '30d', 'cycle'] as const;
export type Period = (typeof PERIODS)[number];

export interface RangeQuery {
  period?: string;
  from?: string;
  to?: string;
  /** IANA time zone of the days: date-only from/to are its midnights, the usage summary's byDay its days. Default UTC. */
  tz?: string;
}

/** A half-open interval [from, to). */
export interface TimeRange {
  from: Date;
  to: Date;
}

/** A range and the time zone its days are counted in. */
export type ZonedRange = TimeRange & { timeZone: string };

/** `tz` as its canonical IANA name (`US/Eastern` → `America/New_York`); UTC when not given. Offsets are refused. */
export function parseZone(value: string | undefined): string {
  if (value === undefined) return 'UTC';
  if (!isValidZone(value)) throw invalidParam('tz', 'must be an IANA time zone such as Europe/Berlin');
  return canonicalZone(value);
}

/** Either a concrete range or "the account's current cycle", which only the database knows. */
export type RangeRequest = { kind: 'range'; range: TimeRange } | { kind: 'cycle' };

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * A date (its midnight in `zone`, UTC by default; where a change to summer time skips midnight, the day's first
 * instant) or an instant by the rule every edge takes (libs/instant), years 0001-9999 either way.
 */
export function parseInstant(field: string, value: string, zone = 'UTC'): Date {
  const date = ISO_DATE.test(value);
  const utc = date ? instantOf(`${value}T00:00:00Z`) : instantOf(value);
  if (!utc) throw invalidParam(field, 'must be an ISO-8601 date (2025-01-31) or instant with offset (2025-01-31T10:00:00Z)');
  if (!date || zone === 'UTC') return utc;
  const zoned = instantOf(DateTime.fromISO(value, { zone }).toUTC().toISO() ?? '');
  if (!zoned) throw invalidParam(field, `its midnight in ${zone} is outside the years 0001-9999 in UTC`);
  return zoned;
}

/**
 * The longest range a portal token (an end user's browser) may ask the usage summary or export for: a year and a
 * month. Each request aggregates or reads every usage of the range; any range is an API key's to ask.
 */
export const PORTAL_MAX_RANGE_DAYS = 400;

/**
 * `period=7d|30d|cycle`, or `from`/`to` (ISO; a date-only one is midnight in `tz`), never both. `to` defaults to now; `from` without a period
 * defaults to `defaultDays` before `to` (undefined = from the beginning of time). `maxDays`: the longest `from`/`to`
 * range taken (a period is always shorter).
 */
export function parseRange(query: RangeQuery, now: Date, defaultDays: number | undefined, maxDays?: number): RangeRequest {
  const { period, from, to } = query;
  const zone = parseZone(query.tz);
  if (period !== undefined) {
    if (!(PERIODS as readonly string[]).includes(period)) throw invalidParam('period', `must be one of ${PERIODS.join(', ')}`);
    if (from !== undefined || to !== undefined) throw invalidParam('period', 'cannot be combined with from/to');
    if (period === 'cycle') return { kind: 'cycle' };
    const days = period === '7d' ? 7 : 30;
    return { kind: 'range', range: { from: new Date(now.getTime() - days * 86_400_000), to: now } };
  }
  const end = to !== undefined ? parseInstant('to', to, zone) : now;
  const start =
    from !== undefined ? parseInstant('from', from, zone) : defaultDays !== undefined ? new Date(end.getTime() - defaultDays * 86_400_000) : new Date(0);
  if (start.getTime() >= end.getTime()) throw invalidParam(from !== undefined ? 'from' : 'to', 'from must be before to');
  // Midnights of a zone with summer time are 23 or 25 hours apart: a range of whole days there may be two hours longer.
  const slack = zone === 'UTC' ? 0 : 2 * 3_600_000;
  if (maxDays !== undefined && end.getTime() - start.getTime() > maxDays * 86_400_000 + slack) {
    throw invalidParam(from !== undefined ? 'from' : 'to', `must be at most ${maxDays} days before to with a portal token (ask for the rest in further requests)`);
  }
  return { kind: 'range', range: { from: start, to: end } };
}

/**
 * The days of `zone` from the one `first` falls on to the one `last` falls on, and the instant each starts (its
 * midnight, or where summer time skips midnight its first instant): what the usage summary counts `byDay` by. Node's
 * zone database decides, as it does the range's midnights; PostgreSQL's may be another version, and reads some names
 * (CET, EET, MET, WET) as fixed offsets without summer time.
 */
export function zoneDays(first: Date, last: Date, zone: string): { day: string; start: Date }[] {
  const days: { day: string; start: Date }[] = [];
  const end = DateTime.fromJSDate(last, { zone });
  for (let day = DateTime.fromJSDate(first, { zone }).startOf('day'); day <= end; day = day.plus({ days: 1 }).startOf('day')) {
    days.push({ day: day.toFormat('yyyy-MM-dd'), start: day.toJSDate() });
  }
  return days;
}

/** The current cycle as stored; without a recorded start, the month before its end (cycles are monthly). */
export function cycleRange(cycleStart: Date | null, cycleEnd: Date | null): TimeRange | undefined {
  if (!cycleEnd) return undefined;
  const from = cycleStart ?? DateTime.fromJSDate(cycleEnd, { zone: 'utc' }).minus({ months: 1 }).toJSDate();
  return { from, to: cycleEnd };
}

/** The usage summary and the CSV export cover the last 30 days unless asked otherwise. */
export const DEFAULT_USAGE_DAYS = 30;

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export function parseLimit(value: string | undefined): number {
  if (value === undefined) return DEFAULT_PAGE_SIZE;
  const limit = /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(limit >= 1 && limit <= MAX_PAGE_SIZE)) throw invalidParam('limit', `must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  return limit;
}

export function parseTypes(value: string | undefined): TransactionType[] | undefined {
  if (value === undefined || value === '') return undefined;
  const types = value.split(',').map((type) => type.trim());
  const unknown = types.filter((type) => !(TRANSACTION_TYPES as readonly string[]).includes(type));
  if (unknown.length > 0) throw invalidParam('type', `must be a comma-separated list of ${TRANSACTION_TYPES.join(', ')}`);
  return [...new Set(types)] as TransactionType[];
}

/**
 * Where a page of the history ends, for the next one to start after: the stream version of its last item, and for a
 * page ordered by time (one asked with `from` or `to`) that item's time too, in microseconds since 1970.
 */
export type HistoryCursor = { kind: 'version'; streamVersion: number } | { kind: 'time'; occurredAtUs: bigint; streamVersion: number };

/**
 * Opaque to clients: base64url of "v1:<streamVersion>" (pages in stream order) or "t1:<microseconds>:<streamVersion>"
 * (pages in time order), of the last item returned; the next page holds the older items. The prefixes let the format
 * change without misreading old cursors.
 */
export function encodeCursor(cursor: HistoryCursor): string {
  const text = cursor.kind === 'version' ? `v1:${cursor.streamVersion}` : `t1:${cursor.occurredAtUs}:${cursor.streamVersion}`;
  return Buffer.from(text, 'utf8').toString('base64url');
}

/** Microseconds since 1970 a cursor's time may be: past 9999 AD either way (what instants may be), inside PostgreSQL's range. */
const MAX_CURSOR_US = 300_000_000_000_000_000n;

export function decodeCursor(cursor: string | undefined): HistoryCursor | undefined {
  if (cursor === undefined) return undefined;
  const text = /^[A-Za-z0-9_-]{1,64}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const byVersion = /^v1:(\d{1,10})$/.exec(text);
  const byTime = /^t1:(-?\d{1,19}):(\d{1,10})$/.exec(text);
  const version = Number(byVersion?.[1] ?? byTime?.[2] ?? NaN);
  const occurredAtUs = byTime ? BigInt(byTime[1]) : 0n;
  if (!(version >= 1 && version <= 2_147_483_647) || occurredAtUs > MAX_CURSOR_US || occurredAtUs < -MAX_CURSOR_US) {
    throw invalidParam('cursor', 'is not a cursor this API returned');
  }
  return byTime ? { kind: 'time', occurredAtUs, streamVersion: version } : { kind: 'version', streamVersion: version };
}

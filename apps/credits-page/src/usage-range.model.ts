import { parseCredits, type Micro } from '@tally/money';

/**
 * The usage filters: the last 7 or 30 days, or custom days; whole days either way, days of the time zone the page
 * shows (the account's): the ledger's usage summary counts its `byDay` in the zone asked for (`tz`), so the chart's
 * bars and the totals cover the same span.
 */
export type RangeChoice = { kind: '7d' } | { kind: '30d' } | { kind: 'custom'; from: string; to: string };

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;

/** A `YYYY-MM-DD` that is a real calendar day, as a UTC midnight; undefined otherwise. */
export function parseDay(value: string): Date | undefined {
  if (!DAY.test(value)) return undefined;
  const date = new Date(`${value}T00:00:00Z`);
  return Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value ? undefined : date;
}

export const dayOf = (date: Date): string => date.toISOString().slice(0, 10);

/** Why a custom range cannot be asked for, or undefined when it can. `to` is inclusive. */
export function customRangeProblem(from: string, to: string): string | undefined {
  const start = parseDay(from);
  const end = parseDay(to);
  if (!start) return 'Choose a start date.';
  if (!end) return 'Choose an end date.';
  if (end.getTime() < start.getTime()) return 'The end date is before the start date.';
  if (end.getTime() - start.getTime() > 366 * DAY_MS) return 'Choose at most a year.';
  return undefined;
}

/**
 * Query parameters of `GET /usage` and `GET /usage/export` for a choice: whole days in `timeZone` (the ledger takes a
 * date-only from/to as that zone's midnight). The last 7 (30) days are that many whole days up to `now`'s, today
 * included, not the ledger's rolling `period=7d` (7 × 24 h back from now, which starts in the middle of a day: the chart
 * drew an eighth, partial bar).
 */
export function usageQuery(choice: RangeChoice, timeZone: string, now = new Date()): Record<string, string> {
  if (choice.kind !== 'custom') return usageQuery({ kind: 'custom', ...lastDays(now, choice.kind === '7d' ? 7 : 30, timeZone) }, timeZone);
  const problem = customRangeProblem(choice.from, choice.to);
  if (problem) throw new RangeError(problem);
  return { from: choice.from, to: dayOf(new Date((parseDay(choice.to) as Date).getTime() + DAY_MS)), tz: timeZone };
}

/** The calendar day (`YYYY-MM-DD`) an instant falls on in `timeZone`. */
export function dayIn(instant: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(instant);
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('year').padStart(4, '0')}-${part('month')}-${part('day')}`;
}

/** The last `days` days in `timeZone` up to `now`'s (inclusive), as a custom range: what the custom inputs start from. */
export function lastDays(now: Date, days: number, timeZone: string): { from: string; to: string } {
  const today = parseDay(dayIn(now, timeZone)) as Date;
  return { from: dayOf(new Date(today.getTime() - (days - 1) * DAY_MS)), to: dayOf(today) };
}

/** Every day in `timeZone` that [from, to) touches, oldest first (at most 400). */
export function daysOf(from: string, to: string, timeZone: string): string[] {
  const start = Date.parse(from);
  const end = Date.parse(to);
  if (Number.isNaN(start) || Number.isNaN(end) || end <= start) return [];
  // Days are contiguous: the range touches every one from its first instant's day to its last instant's.
  const first = parseDay(dayIn(new Date(start), timeZone)) as Date;
  const last = dayIn(new Date(end - 1), timeZone);
  const days: string[] = [];
  for (let t = first.getTime(); days.length < 400; t += DAY_MS) {
    days.push(dayOf(new Date(t)));
    if (days[days.length - 1] >= last) break;
  }
  return days;
}

export interface DayUsage {
  day: string;
  credits: Micro;
  requests: number;
}

/** The summary's `byDay` (only days with usage, in its `timeZone`) spread over every day of the range, empty days as zero. */
export function fillDays(byDay: readonly { day: string; credits: string; requests: number }[], from: string, to: string, timeZone: string): DayUsage[] {
  const known = new Map(byDay.map((d) => [d.day, d]));
  const days = daysOf(from, to, timeZone);
  for (const day of known.keys()) if (!days.includes(day)) days.push(day);
  days.sort();
  return days.map((day) => {
    const usage = known.get(day);
    return { day, credits: usage ? parseCredits(usage.credits) : 0n, requests: usage?.requests ?? 0 };
  });
}

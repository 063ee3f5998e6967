import { parseCredits, type Micro } from '@tally/money';

/**
 * The usage filters: the last 7 or 30 days, or custom days; whole days either way. Custom days are UTC
 * days, the days the ledger's usage summary counts by (`byDay`), so the chart's bars and the totals cover the same
 * span; the page says so next to the inputs.
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
 * Query parameters of `GET /usage` and `GET /usage/export` for a choice. The last 7 (30) days are that many whole UTC
 * days up to `now`'s, today included, not the ledger's rolling `period=7d` (7 × 24 h back from now, which starts in
 * the middle of a day: the chart drew an eighth, partial bar).
 */
export function usageQuery(choice: RangeChoice, now = new Date()): Record<string, string> {
  if (choice.kind !== 'custom') return usageQuery({ kind: 'custom', ...lastDays(now, choice.kind === '7d' ? 7 : 30) });
  const problem = customRangeProblem(choice.from, choice.to);
  if (problem) throw new RangeError(problem);
  const end = new Date((parseDay(choice.to) as Date).getTime() + DAY_MS);
  return { from: `${choice.from}T00:00:00Z`, to: end.toISOString().replace('.000Z', 'Z') };
}

/** The last `days` days up to `today` (inclusive), as a custom range: what the custom inputs start from. */
export function lastDays(today: Date, days: number): { from: string; to: string } {
  return { from: dayOf(new Date(today.getTime() - (days - 1) * DAY_MS)), to: dayOf(today) };
}

/** Every UTC day that [from, to) touches, oldest first (at most 400). */
export function daysOf(from: string, to: string): string[] {
  const start = Date.parse(from);
  const end = Date.parse(to);
  if (Number.isNaN(start) || Number.isNaN(end) || end <= start) return [];
  const days: string[] = [];
  for (let t = Date.UTC(new Date(start).getUTCFullYear(), new Date(start).getUTCMonth(), new Date(start).getUTCDate()); t < end && days.length < 400; t += DAY_MS) {
    days.push(dayOf(new Date(t)));
  }
  return days;
}

export interface DayUsage {
  day: string;
  credits: Micro;
  requests: number;
}

/** The summary's `byDay` (only days with usage) spread over every day of the range, empty days as zero. */
export function fillDays(byDay: readonly { day: string; credits: string; requests: number }[], from: string, to: string): DayUsage[] {
  const known = new Map(byDay.map((d) => [d.day, d]));
  const days = daysOf(from, to);
  for (const day of known.keys()) if (!days.includes(day)) days.push(day);
  days.sort();
  return days.map((day) => {
    const usage = known.get(day);
    return { day, credits: usage ? parseCredits(usage.credits) : 0n, requests: usage?.requests ?? 0 };
  });
}

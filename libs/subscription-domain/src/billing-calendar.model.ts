import { DateTime, Info } from 'luxon';
import { parseInstant } from '@tally/instant';
import { SubscriptionError } from './subscription.errors';

/** The instant a subscription's billing started and the account's IANA time zone. */
export interface BillingAnchor {
  /** ISO-8601 instant with an offset ("2026-01-31T15:00:00.000Z"). */
  readonly at: string;
  readonly zone: string;
}

export interface BillingCycle {
  readonly index: number;
  readonly start: Date;
  /** Exclusive: the start of the next cycle. */
  readonly end: Date;
}

/**
 * True for an IANA zone name luxon (and so Intl) knows: "Europe/Berlin", "UTC"; false for offsets like "+02:00".
 * Intl itself accepts offset zones ("+02:00", "-0530") since Node 22's ICU, so they are refused by their sign: an
 * account's calendar follows its zone's daylight-saving rules, which a fixed offset does not have.
 */
export function isValidZone(zone: unknown): zone is string {
  return typeof zone === 'string' && zone !== '' && !OFFSET_ZONE.test(zone) && Info.isValidIANAZone(zone);
}
const OFFSET_ZONE = /^[+\-\u2212]/;

/**
 * A zone isValidZone takes, by the name Intl gives it (`europe/berlin` → `Europe/Berlin`, `US/Eastern` →
 * `America/New_York`): one zone has one name, so a subscription keeps it and compares it by that name.
 */
export function canonicalZone(zone: string): string {
  return new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
}


function anchorIn(anchor: BillingAnchor): DateTime {
  if (!isValidZone(anchor.zone)) {
    throw new SubscriptionError('INVALID_TIME_ZONE', `not an IANA time zone: ${JSON.stringify(anchor.zone)}`, { field: 'zone', zone: anchor.zone });
  }
  const at = parseInstant(anchor.at);
  if (!at) throw new SubscriptionError('INVALID_ANCHOR', `not an ISO instant with an offset: ${JSON.stringify(anchor.at)}`, { field: 'at' });
  return DateTime.fromJSDate(at, { zone: anchor.zone });
}

function startOf(local: DateTime, n: number): Date {
  // Calendar arithmetic in the anchor's zone: the day is clamped to the month's last day (Jan 31 → Feb 28),
  // the wall time is kept across DST changes; a wall time that does not exist that day (spring-forward gap)
  // moves forward by the gap (02:30 on a 02:00 → 03:00 day starts at 03:30), an ambiguous one (fall-back: the
  // wall time happens twice) is the occurrence with the anchor's own UTC offset if it has one, else the other
  // (luxon keeps the original offset when it is valid). Documented in apps/subscription-cycle/README.md.
  return local.plus({ months: n }).toJSDate();
}

/** Start of cycle `n` (0 = the anchor itself): anchor + n months in the anchor's zone, always from the anchor. */
export function cycleStart(anchor: BillingAnchor, n: number): Date {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`cycle index must be a non-negative integer, got ${n}`);
  return startOf(anchorIn(anchor), n);
}

/**
 * The cycle that contains `now` (start <= now < end). An anchor is never in the future when it is set (Subscribe
 * refuses that; upgrades anchor at now), so `now` before it is another instance's clock running behind the one that
 * set it: that instant is in cycle 0, not an error (it had made GET, cancel and downgrade fail for valid requests).
 */
export function cycleAt(anchor: BillingAnchor, now: Date): BillingCycle {
  const local = anchorIn(anchor);
  if (Number.isNaN(now.getTime())) throw new RangeError('now is not a valid date');
  if (now.getTime() < local.toMillis()) return { index: 0, start: startOf(local, 0), end: startOf(local, 1) };
  const nowLocal = DateTime.fromJSDate(now, { zone: anchor.zone });
  // The month difference is right to within one; the loops settle it against the real cycle starts.
  let index = Math.max(0, (nowLocal.year - local.year) * 12 + (nowLocal.month - local.month));
  while (index > 0 && startOf(local, index).getTime() > now.getTime()) index--;
  while (startOf(local, index + 1).getTime() <= now.getTime()) index++;
  return { index, start: startOf(local, index), end: startOf(local, index + 1) };
}

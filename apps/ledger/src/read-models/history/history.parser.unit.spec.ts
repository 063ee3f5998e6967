import { ContractViolation } from '@tally/contracts';
import { checkAccountId, cycleRange, decodeCursor, encodeCursor, parseLimit, parseRange, parseTypes, parseZone, zoneDays } from './history.parser';

const now = new Date('2025-03-31T12:00:00.000Z');

function issueOf(fn: () => unknown): { field: string; reason: string } {
  try {
    fn();
  } catch (error) {
    if (error instanceof ContractViolation) return error.issues[0];
    throw error;
  }
  throw new Error('expected a ContractViolation');
}

describe('history parameters', () => {
  it('turns 7d and 30d into ranges ending now', () => {
    expect(parseRange({ period: '7d' }, now, 30)).toEqual({ kind: 'range', range: { from: new Date('2025-03-24T12:00:00.000Z'), to: now } });
    expect(parseRange({ period: '30d' }, now, 30)).toEqual({ kind: 'range', range: { from: new Date('2025-03-01T12:00:00.000Z'), to: now } });
    expect(parseRange({ period: 'cycle' }, now, 30)).toEqual({ kind: 'cycle' });
  });

  it('accepts from/to as dates or instants, with defaults', () => {
    expect(parseRange({ from: '2025-01-01', to: '2025-02-01T00:00:00+01:00' }, now, 30)).toEqual({
      kind: 'range', range: { from: new Date('2025-01-01T00:00:00Z'), to: new Date('2025-01-31T23:00:00Z') },
    });
    expect(parseRange({}, now, 30)).toEqual({ kind: 'range', range: { from: new Date('2025-03-01T12:00:00.000Z'), to: now } });
    expect(parseRange({}, now, undefined)).toEqual({ kind: 'range', range: { from: new Date(0), to: now } });
  });

  it('given a tz, when from/to are dates, then they are its midnights (the first instant where summer time skips midnight); instants keep their offset', () => {
    expect(parseRange({ from: '2025-03-06', to: '2025-03-07T00:00:00Z', tz: 'Asia/Tokyo' }, now, 30)).toEqual({
      kind: 'range', range: { from: new Date('2025-03-05T15:00:00Z'), to: new Date('2025-03-07T00:00:00Z') },
    });
    // Chile springs forward at midnight on 6 September 2026: the day starts at 01:00 −03.
    expect(parseRange({ from: '2026-09-06', to: '2026-09-07', tz: 'America/Santiago' }, now, 30)).toEqual({
      kind: 'range', range: { from: new Date('2026-09-06T04:00:00Z'), to: new Date('2026-09-07T03:00:00Z') },
    });
    expect(parseZone(undefined)).toBe('UTC');
    expect(parseZone('US/Eastern')).toBe('America/New_York');
    // Years 0001-9999 whatever the zone: Tokyo's midnight of 1 January 0001 is in the year 0 in UTC.
    expect(issueOf(() => parseRange({ from: '0001-01-01', tz: 'Asia/Tokyo' }, now, 30))).toEqual({ field: 'from', reason: 'its midnight in Asia/Tokyo is outside the years 0001-9999 in UTC' });
    // 400 whole days of New York (two autumn changes, one spring: 400 days and an hour) are a portal token's to ask.
    expect(parseRange({ from: '2025-10-01', to: '2026-11-05', tz: 'America/New_York' }, now, 30, 400).kind).toBe('range');
    expect(issueOf(() => parseRange({ from: '2025-10-01', to: '2026-11-06', tz: 'America/New_York' }, now, 30, 400)).field).toBe('from');
    for (const tz of ['Mars/Olympus_Mons', '+09:00', '', 'UTC+9']) expect([tz, issueOf(() => parseRange({ period: '7d', tz }, now, 30)).field]).toEqual([tz, 'tz']);
  });

  it('given a first and a last usage, when the days of a zone are listed, then each starts at its midnight (or its first instant), summer time included', () => {
    // Berlin springs forward on 29 March 2026 (a 23-hour day) and Chile at midnight on 6 September 2026.
    expect(zoneDays(new Date('2026-03-28T12:00:00Z'), new Date('2026-03-30T00:30:00Z'), 'Europe/Berlin')).toEqual([
      { day: '2026-03-28', start: new Date('2026-03-27T23:00:00Z') },
      { day: '2026-03-29', start: new Date('2026-03-28T23:00:00Z') },
      { day: '2026-03-30', start: new Date('2026-03-29T22:00:00Z') },
    ]);
    expect(zoneDays(new Date('2026-09-06T12:00:00Z'), new Date('2026-09-06T12:00:00Z'), 'America/Santiago')).toEqual([
      { day: '2026-09-06', start: new Date('2026-09-06T04:00:00Z') },
    ]);
    // 18:00 UTC on 5 March is 6 March in Tokyo.
    expect(zoneDays(new Date('2025-03-05T09:30:00Z'), new Date('2025-03-05T18:00:00Z'), 'Asia/Tokyo').map((d) => d.day)).toEqual(['2025-03-05', '2025-03-06']);
  });

  it('names the bad field', () => {
    expect(issueOf(() => parseRange({ period: '1y' }, now, 30)).field).toBe('period');
    expect(issueOf(() => parseRange({ period: '7d', from: '2025-01-01' }, now, 30)).field).toBe('period');
    expect(issueOf(() => parseRange({ from: 'yesterday' }, now, 30)).field).toBe('from');
    expect(issueOf(() => parseRange({ to: '2025-02-30' }, now, 30)).field).toBe('to');
    // Instants by the rule every edge takes (libs/instant): an offset past ±15:59, hour 24, year 0 are refused.
    expect(issueOf(() => parseRange({ from: '2025-03-01T00:00:00+99:99', to: '2025-03-02T00:00:00Z' }, now, 30)).field).toBe('from');
    expect(issueOf(() => parseRange({ from: '2025-03-01T00:00:00Z', to: '2025-03-01T24:00:00Z' }, now, 30)).field).toBe('to');
    expect(issueOf(() => parseRange({ from: '0000-12-31' }, now, 30)).field).toBe('from');
    expect(issueOf(() => parseRange({ from: '0000-12-31T00:00:00Z' }, now, 30)).field).toBe('from');
    expect(issueOf(() => parseRange({ from: '2025-03-02', to: '2025-03-01' }, now, 30)).field).toBe('from');
    expect(issueOf(() => parseLimit('0')).field).toBe('limit');
    expect(issueOf(() => parseLimit('abc')).field).toBe('limit');
    expect(issueOf(() => parseTypes('UsageDebited,Nope')).field).toBe('type');
    expect(issueOf(() => checkAccountId('has space')).field).toBe('accountId');
  });

  it('given a longest range, when from/to span more, then from (or to, alone) is refused; a period is always taken', () => {
    expect(parseRange({ from: '2024-03-01', to: '2025-04-05' }, now, 30, 400)).toEqual({ kind: 'range', range: { from: new Date('2024-03-01T00:00:00Z'), to: new Date('2025-04-05T00:00:00Z') } });
    expect(issueOf(() => parseRange({ from: '2024-03-01', to: '2025-04-05T00:00:00.001Z' }, now, 30, 400))).toEqual({ field: 'from', reason: expect.stringContaining('at most 400 days') });
    expect(issueOf(() => parseRange({ to: '2025-04-05' }, now, undefined, 400)).field).toBe('to'); // from the beginning of time
    expect(parseRange({ period: '30d' }, now, 30, 7)).toMatchObject({ kind: 'range' });
  });

  it('parses limits and type lists', () => {
    expect(parseLimit(undefined)).toBe(50);
    expect(parseLimit('500')).toBe(500);
    expect(parseTypes('UsageDebited, CreditsGranted,UsageDebited')).toEqual(['UsageDebited', 'CreditsGranted']);
    expect(parseTypes(undefined)).toBeUndefined();
  });

  it('round-trips opaque cursors and refuses forged ones', () => {
    const cursor = encodeCursor({ kind: 'version', streamVersion: 12345 });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual({ kind: 'version', streamVersion: 12345 });
    // A time-ordered page's: its last item's time to the microsecond (before 1970 too) and version.
    for (const occurredAtUs of [1_764_000_000_123_456n, -62_135_596_800_000_000n, 253_402_300_799_999_999n]) {
      const timeCursor = encodeCursor({ kind: 'time', occurredAtUs, streamVersion: 2_147_483_647 });
      expect(timeCursor).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      expect(decodeCursor(timeCursor)).toEqual({ kind: 'time', occurredAtUs, streamVersion: 2_147_483_647 });
    }
    expect(issueOf(() => decodeCursor(Buffer.from('t1:9000000000000000000:5').toString('base64url'))).field).toBe('cursor');
    expect(issueOf(() => decodeCursor(Buffer.from('t1:5:0').toString('base64url'))).field).toBe('cursor');
    expect(issueOf(() => decodeCursor(Buffer.from('t1:1.5:3').toString('base64url'))).field).toBe('cursor');
    expect(decodeCursor(undefined)).toBeUndefined();
    expect(issueOf(() => decodeCursor('12345')).field).toBe('cursor');
    expect(issueOf(() => decodeCursor(Buffer.from('v1:-3').toString('base64url'))).field).toBe('cursor');
    expect(issueOf(() => decodeCursor('!!')).field).toBe('cursor');
  });

  it('derives the cycle range, falling back to a month before its end', () => {
    const end = new Date('2025-04-01T00:00:00Z');
    expect(cycleRange(new Date('2025-03-01T00:00:00Z'), end)).toEqual({ from: new Date('2025-03-01T00:00:00Z'), to: end });
    expect(cycleRange(null, end)).toEqual({ from: new Date('2025-03-01T00:00:00Z'), to: end });
    expect(cycleRange(null, null)).toBeUndefined();
  });
});

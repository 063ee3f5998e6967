import { customRangeProblem, dayIn, daysOf, fillDays, lastDays, parseDay, usageQuery } from './usage-range.model';

describe('usage ranges', () => {
  it('the last 7 and 30 days are whole days of the zone, today included: the chart draws 7 (30) bars, the totals cover them', () => {
    const now = new Date('2026-03-02T15:00:00Z');
    const week = usageQuery({ kind: '7d' }, 'UTC', now);
    expect(week).toEqual({ from: '2026-02-24', to: '2026-03-03', tz: 'UTC' });
    const month = usageQuery({ kind: '30d' }, 'UTC', now);
    expect(month).toEqual({ from: '2026-02-01', to: '2026-03-03', tz: 'UTC' });
    // 15:00 UTC on 2 March is already 3 March in Tokyo: its week ends there.
    expect(usageQuery({ kind: '7d' }, 'Asia/Tokyo', now)).toEqual({ from: '2026-02-25', to: '2026-03-04', tz: 'Asia/Tokyo' });
  });

  it('custom days are whole days of the zone, the end day included', () => {
    expect(usageQuery({ kind: 'custom', from: '2026-02-27', to: '2026-02-28' }, 'Europe/Berlin')).toEqual({ from: '2026-02-27', to: '2026-03-01', tz: 'Europe/Berlin' });
    expect(usageQuery({ kind: 'custom', from: '2028-02-29', to: '2028-02-29' }, 'UTC')).toEqual({ from: '2028-02-29', to: '2028-03-01', tz: 'UTC' });
  });

  it('names what is wrong with a custom range', () => {
    expect(customRangeProblem('', '2026-01-01')).toBe('Choose a start date.');
    expect(customRangeProblem('2026-02-30', '2026-03-01')).toBe('Choose a start date.');
    expect(customRangeProblem('2026-03-02', '2026-03-01')).toBe('The end date is before the start date.');
    expect(customRangeProblem('2024-01-01', '2026-01-01')).toBe('Choose at most a year.');
    expect(customRangeProblem('2026-03-01', '2026-03-01')).toBeUndefined();
    expect(() => usageQuery({ kind: 'custom', from: '2026-03-02', to: '2026-03-01' }, 'UTC')).toThrow(RangeError);
  });

  it('parses only real calendar days', () => {
    expect(parseDay('2026-02-29')).toBeUndefined();
    expect(parseDay('2026-2-1')).toBeUndefined();
    expect(parseDay('2026-12-31')?.toISOString()).toBe('2026-12-31T00:00:00.000Z');
  });

  it('the last n days end today in the zone', () => {
    expect(lastDays(new Date('2026-03-02T15:00:00Z'), 7, 'UTC')).toEqual({ from: '2026-02-24', to: '2026-03-02' });
    expect(lastDays(new Date('2026-03-02T15:00:00Z'), 7, 'Asia/Tokyo')).toEqual({ from: '2026-02-25', to: '2026-03-03' });
    expect(lastDays(new Date('2026-03-02T03:00:00Z'), 1, 'America/Los_Angeles')).toEqual({ from: '2026-03-01', to: '2026-03-01' });
  });

  it('names the day an instant falls on in a zone', () => {
    expect(dayIn(new Date('2025-03-05T18:00:00Z'), 'UTC')).toBe('2025-03-05');
    expect(dayIn(new Date('2025-03-05T18:00:00Z'), 'Asia/Tokyo')).toBe('2025-03-06');
    expect(dayIn(new Date('2025-03-05T03:00:00Z'), 'America/New_York')).toBe('2025-03-04');
  });

  it('lists every day of the zone a range touches, partial days at both ends', () => {
    expect(daysOf('2026-05-01T10:00:00.000Z', '2026-05-03T09:00:00.000Z', 'UTC')).toEqual(['2026-05-01', '2026-05-02', '2026-05-03']);
    expect(daysOf('2026-05-01T00:00:00Z', '2026-05-03T00:00:00Z', 'UTC')).toEqual(['2026-05-01', '2026-05-02']);
    expect(daysOf('2026-05-03T00:00:00Z', '2026-05-01T00:00:00Z', 'UTC')).toEqual([]);
    // Tokyo's 1 and 2 May, as the ledger answers a from=2026-05-01&to=2026-05-03&tz=Asia/Tokyo.
    expect(daysOf('2026-04-30T15:00:00.000Z', '2026-05-02T15:00:00.000Z', 'Asia/Tokyo')).toEqual(['2026-05-01', '2026-05-02']);
    // A day of 23 hours (Berlin's spring forward, 29 March 2026) is one day.
    expect(daysOf('2026-03-27T23:00:00.000Z', '2026-03-29T22:00:00.000Z', 'Europe/Berlin')).toEqual(['2026-03-28', '2026-03-29']);
  });

  it('fills days without usage with zero, keeping exact credits', () => {
    const days = fillDays([{ day: '2026-05-02', credits: '0.006', requests: 1 }], '2026-05-01T00:00:00Z', '2026-05-04T00:00:00Z', 'UTC');
    expect(days).toEqual([
      { day: '2026-05-01', credits: 0n, requests: 0 },
      { day: '2026-05-02', credits: 6_000n, requests: 1 },
      { day: '2026-05-03', credits: 0n, requests: 0 },
    ]);
  });
});

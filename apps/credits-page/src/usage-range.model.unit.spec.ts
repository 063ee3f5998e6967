import { customRangeProblem, daysOf, fillDays, lastDays, parseDay, usageQuery } from './usage-range.model';

describe('usage ranges', () => {
  it('the last 7 and 30 days are whole UTC days, today included: the chart draws 7 (30) bars, the totals cover them', () => {
    const now = new Date('2026-03-02T15:00:00Z');
    const week = usageQuery({ kind: '7d' }, now);
    expect(week).toEqual({ from: '2026-02-24T00:00:00Z', to: '2026-03-03T00:00:00Z' });
    expect(daysOf(week.from, week.to)).toEqual(['2026-02-24', '2026-02-25', '2026-02-26', '2026-02-27', '2026-02-28', '2026-03-01', '2026-03-02']);
    const month = usageQuery({ kind: '30d' }, now);
    expect(month).toEqual({ from: '2026-02-01T00:00:00Z', to: '2026-03-03T00:00:00Z' });
    expect(daysOf(month.from, month.to)).toHaveLength(30);
  });

  it('custom days are whole UTC days, the end day included', () => {
    expect(usageQuery({ kind: 'custom', from: '2026-02-27', to: '2026-02-28' })).toEqual({ from: '2026-02-27T00:00:00Z', to: '2026-03-01T00:00:00Z' });
    expect(usageQuery({ kind: 'custom', from: '2028-02-29', to: '2028-02-29' })).toEqual({ from: '2028-02-29T00:00:00Z', to: '2028-03-01T00:00:00Z' });
  });

  it('names what is wrong with a custom range', () => {
    expect(customRangeProblem('', '2026-01-01')).toBe('Choose a start date.');
    expect(customRangeProblem('2026-02-30', '2026-03-01')).toBe('Choose a start date.');
    expect(customRangeProblem('2026-03-02', '2026-03-01')).toBe('The end date is before the start date.');
    expect(customRangeProblem('2024-01-01', '2026-01-01')).toBe('Choose at most a year.');
    expect(customRangeProblem('2026-03-01', '2026-03-01')).toBeUndefined();
    expect(() => usageQuery({ kind: 'custom', from: '2026-03-02', to: '2026-03-01' })).toThrow(RangeError);
  });

  it('parses only real calendar days', () => {
    expect(parseDay('2026-02-29')).toBeUndefined();
    expect(parseDay('2026-2-1')).toBeUndefined();
    expect(parseDay('2026-12-31')?.toISOString()).toBe('2026-12-31T00:00:00.000Z');
  });

  it('the last n days end today', () => {
    expect(lastDays(new Date('2026-03-02T15:00:00Z'), 7)).toEqual({ from: '2026-02-24', to: '2026-03-02' });
  });

  it('lists every UTC day a range touches, partial days at both ends', () => {
    expect(daysOf('2026-05-01T10:00:00.000Z', '2026-05-03T09:00:00.000Z')).toEqual(['2026-05-01', '2026-05-02', '2026-05-03']);
    expect(daysOf('2026-05-01T00:00:00Z', '2026-05-03T00:00:00Z')).toEqual(['2026-05-01', '2026-05-02']);
    expect(daysOf('2026-05-03T00:00:00Z', '2026-05-01T00:00:00Z')).toEqual([]);
  });

  it('fills days without usage with zero, keeping exact credits', () => {
    const days = fillDays([{ day: '2026-05-02', credits: '0.006', requests: 1 }], '2026-05-01T00:00:00Z', '2026-05-04T00:00:00Z');
    expect(days).toEqual([
      { day: '2026-05-01', credits: 0n, requests: 0 },
      { day: '2026-05-02', credits: 6_000n, requests: 1 },
      { day: '2026-05-03', credits: 0n, requests: 0 },
    ]);
  });
});

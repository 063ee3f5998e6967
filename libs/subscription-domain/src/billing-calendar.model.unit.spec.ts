import fc from 'fast-check';
import { DateTime } from 'luxon';
import { cycleAt, cycleStart, isValidZone, type BillingAnchor } from './billing-calendar.model';

const local = (date: Date, zone: string): string => DateTime.fromJSDate(date, { zone }).toFormat("yyyy-MM-dd'T'HH:mm:ss.SSS ZZ");
const newYork = (at: string): BillingAnchor => ({ at: DateTime.fromISO(at, { zone: 'America/New_York' }).toISO() as string, zone: 'America/New_York' });

describe('cycleStart', () => {
  it('clamps to the last day of shorter months, and comes back to the 31st', () => {
    const anchor = newYork('2026-01-31T10:00');
    expect([1, 2, 3, 4].map((n) => local(cycleStart(anchor, n), anchor.zone))).toEqual([
      '2026-02-28T10:00:00.000 -05:00',
      '2026-03-31T10:00:00.000 -04:00',
      '2026-04-30T10:00:00.000 -04:00',
      '2026-05-31T10:00:00.000 -04:00',
    ]);
    expect(cycleStart(anchor, 0).toISOString()).toBe('2026-01-31T15:00:00.000Z');
  });

  it('lands on February 29 in a leap year', () => {
    expect(local(cycleStart(newYork('2026-01-31T10:00'), 25), 'America/New_York')).toBe('2028-02-29T10:00:00.000 -05:00');
    expect(local(cycleStart(newYork('2028-01-30T10:00'), 1), 'America/New_York')).toBe('2028-02-29T10:00:00.000 -05:00');
  });

  it('keeps the local wall time across daylight-saving changes', () => {
    const anchor = newYork('2026-01-15T09:00');
    const april = cycleStart(anchor, 3);
    expect(local(april, anchor.zone)).toBe('2026-04-15T09:00:00.000 -04:00');
    expect(april.toISOString()).toBe('2026-04-15T13:00:00.000Z'); // 14:00Z in January, 13:00Z in April
  });

  it('moves a wall time that does not exist that day forward by the gap', () => {
    // 2027-03-14 02:30 does not exist in New York (02:00 → 03:00)
    expect(local(cycleStart(newYork('2027-02-14T02:30'), 1), 'America/New_York')).toBe('2027-03-14T03:30:00.000 -04:00');
  });

  it('resolves a wall time that happens twice that day to the occurrence with the anchor\'s own offset', () => {
    // 2025-10-26 01:30 happens twice in London (BST +01:00, then GMT +00:00).
    const summerAnchor = { at: '2025-09-26T01:30:00+01:00', zone: 'Europe/London' };
    const winterAnchor = { at: '2025-01-26T01:30:00+00:00', zone: 'Europe/London' };
    expect(cycleStart(summerAnchor, 1).toISOString()).toBe('2025-10-26T00:30:00.000Z'); // the first 01:30 (+01:00)
    expect(cycleStart(winterAnchor, 9).toISOString()).toBe('2025-10-26T01:30:00.000Z'); // the second 01:30 (+00:00)
  });

  it('is computed in the anchor zone, whatever offset the anchor instant was written with', () => {
    const anchor = { at: '2026-01-31T23:30:00Z', zone: 'Asia/Kolkata' }; // Feb 1 05:00 in Kolkata
    expect(local(cycleStart(anchor, 1), anchor.zone)).toBe('2026-03-01T05:00:00.000 +05:30');
  });

  it('rejects a bad zone, anchor or index', () => {
    expect(() => cycleStart({ at: '2026-01-01T00:00:00Z', zone: 'Mars/Olympus' }, 1)).toThrow(expect.objectContaining({ code: 'INVALID_TIME_ZONE' }));
    expect(() => cycleStart({ at: '2026-01-01T00:00:00', zone: 'UTC' }, 1)).toThrow(expect.objectContaining({ code: 'INVALID_ANCHOR' }));
    expect(() => cycleStart({ at: '2026-01-01T00:00:00Z', zone: 'UTC' }, -1)).toThrow(RangeError);
    expect(() => cycleStart({ at: '2026-01-01T00:00:00Z', zone: 'UTC' }, 1.5)).toThrow(RangeError);
  });
});

describe('cycleAt', () => {
  const anchor = newYork('2026-01-31T10:00');

  it('finds the cycle containing an instant, end exclusive', () => {
    expect(cycleAt(anchor, new Date('2026-01-31T15:00:00.000Z'))).toEqual({
      index: 0,
      start: new Date('2026-01-31T15:00:00.000Z'),
      end: new Date('2026-02-28T15:00:00.000Z'),
    });
    expect(cycleAt(anchor, new Date('2026-02-28T14:59:59.999Z')).index).toBe(0);
    expect(cycleAt(anchor, new Date('2026-02-28T15:00:00.000Z')).index).toBe(1);
    expect(cycleAt(anchor, new Date('2026-03-31T13:59:59.999Z')).index).toBe(1);
    expect(cycleAt(anchor, new Date('2026-03-31T14:00:00.000Z'))).toEqual({
      index: 2,
      start: new Date('2026-03-31T14:00:00.000Z'),
      end: new Date('2026-04-30T14:00:00.000Z'),
    });
    expect(cycleAt(anchor, new Date('2029-01-01T00:00:00Z')).index).toBe(35);
  });

  it('puts an instant before the anchor in cycle 0: an instance whose clock is behind the one that set the anchor', () => {
    expect(cycleAt(anchor, new Date('2026-01-31T14:59:59.750Z'))).toEqual({
      index: 0,
      start: new Date('2026-01-31T15:00:00.000Z'),
      end: new Date('2026-02-28T15:00:00.000Z'),
    });
  });
});

describe('isValidZone', () => {
  it.each([
    ['UTC', true],
    ['America/New_York', true],
    ['Australia/Lord_Howe', true],
    ['Mars/Olympus', false],
    ['+02:00', false],
    ['-05:00', false],
    ['-0530', false],
    ['+14', false],
    ['\u221202:00', false],
    ['Etc/GMT+2', true],
    ['', false],
    [undefined, false],
  ])('%s → %s', (zone, valid) => expect(isValidZone(zone)).toBe(valid));
});

describe('billing calendar properties', () => {
  const zones = ['UTC', 'America/New_York', 'Europe/Berlin', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Auckland'];
  const CYCLES = 40;

  const anchors = fc
    .record({
      zone: fc.constantFrom(...zones),
      year: fc.integer({ min: 2024, max: 2032 }),
      month: fc.integer({ min: 1, max: 12 }),
      day: fc.integer({ min: 1, max: 31 }),
      hour: fc.integer({ min: 0, max: 23 }),
      minute: fc.constantFrom(0, 15, 30, 45, 59),
    })
    .map(({ zone, year, month, day, hour, minute }) => {
      const first = DateTime.fromObject({ year, month, day: 1, hour, minute }, { zone });
      const wanted = first.set({ day: Math.min(day, first.daysInMonth as number) });
      return { zone, anchorDay: day, wall: { hour, minute }, anchor: { at: wanted.toISO() as string, zone } };
    })
    .filter(({ anchor, wall }) => {
      // Anchors are real instants: keep only those whose wall time exists (the gap case is covered below).
      const dt = DateTime.fromISO(anchor.at, { zone: anchor.zone });
      return dt.hour === wall.hour && dt.minute === wall.minute;
    });

  it(`walks ${CYCLES} cycles for every anchor day: increasing, clamped day, anchor wall time, no drift`, () => {
    fc.assert(
      fc.property(anchors, ({ zone, anchor, wall }) => {
        const anchorLocal = DateTime.fromISO(anchor.at, { zone });
        const anchorDay = anchorLocal.day;
        let previous = -Infinity;
        for (let n = 0; n <= CYCLES; n++) {
          const start = cycleStart(anchor, n);
          const startLocal = DateTime.fromJSDate(start, { zone });
          const month = anchorLocal.startOf('month').plus({ months: n });

          expect(start.getTime()).toBeGreaterThan(previous);
          previous = start.getTime();
          expect(startLocal.year).toBe(month.year);
          expect(startLocal.month).toBe(month.month);
          expect(startLocal.day).toBe(Math.min(anchorDay, month.daysInMonth as number));

          const wallTimeExists = (() => {
            const candidate = DateTime.fromObject({ year: month.year, month: month.month, day: startLocal.day, ...wall }, { zone });
            return candidate.hour === wall.hour && candidate.minute === wall.minute;
          })();
          if (wallTimeExists) {
            expect([startLocal.hour, startLocal.minute]).toEqual([wall.hour, wall.minute]);
          } else {
            // In a DST gap the start moves forward by the gap (1 h, or 30 min on Lord Howe), never backward.
            const minutesLate = startLocal.hour * 60 + startLocal.minute - (wall.hour * 60 + wall.minute);
            expect(minutesLate === 30 || minutesLate === 60).toBe(true);
          }

          // Computed from the anchor every time: the cycle found from inside it is the same one.
          const found = cycleAt(anchor, start);
          expect(found.index).toBe(n);
          expect(found.start.getTime()).toBe(start.getTime());
          if (n > 0) expect(cycleAt(anchor, new Date(start.getTime() - 1)).index).toBe(n - 1);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('covers every anchor day 1..31 in every zone', () => {
    for (const zone of zones) {
      for (let day = 1; day <= 31; day++) {
        const anchor = { at: DateTime.fromObject({ year: 2027, month: day <= 28 ? 2 : 1, day, hour: 9, minute: 30 }, { zone }).toISO() as string, zone };
        const starts = Array.from({ length: 37 }, (_, n) => cycleStart(anchor, n));
        starts.forEach((start, n) => {
          const startLocal = DateTime.fromJSDate(start, { zone });
          const month = DateTime.fromISO(anchor.at, { zone }).startOf('month').plus({ months: n });
          expect(startLocal.day).toBe(Math.min(day, month.daysInMonth as number));
          expect(startLocal.toFormat('HH:mm')).toBe('09:30');
          if (n > 0) expect(start.getTime()).toBeGreaterThan(starts[n - 1].getTime());
        });
      }
    }
  });

  it('gives the same start for a cycle whether computed alone or after walking the ones before it', () => {
    fc.assert(
      fc.property(anchors, fc.integer({ min: 0, max: 120 }), ({ anchor }, n) => {
        const walked = Array.from({ length: n + 1 }, (_, i) => cycleStart(anchor, i))[n];
        expect(cycleStart(anchor, n).getTime()).toBe(walked.getTime());
        expect(cycleAt(anchor, cycleStart(anchor, n)).index).toBe(n);
      }),
      { numRuns: 60 },
    );
  });
});

import fc from 'fast-check';
import { Client } from 'pg';
import { isInstant, parseInstant } from '@tally/instant';
import { testDatabaseUrl } from '../src/testing/index';

/**
 * libs/instant's premise, on the real database: every string it takes, PostgreSQL's timestamptz reads as the instant
 * JavaScript's Date reads (to Date's millisecond: PostgreSQL keeps microseconds), whatever the session's time zone; so
 * an edge that takes it hands every reader the same instant, and a projection never refuses one.
 */
describe('instants as PostgreSQL reads them', () => {
  let db: Client;

  beforeAll(async () => {
    db = new Client({ connectionString: testDatabaseUrl() });
    await db.connect();
    // Far from UTC, and not a whole hour: a string read without its offset would show.
    await db.query(`SET TIME ZONE 'Asia/Kathmandu'`);
  });

  afterAll(async () => {
    await db?.end();
  });

  /** The instants PostgreSQL reads, as epoch milliseconds cut to Date's precision. */
  const readByPostgres = async (values: string[]): Promise<number[]> => {
    const { rows } = await db.query<{ ms: string }>(
      `SELECT floor(extract(epoch FROM v::timestamptz) * 1000)::bigint::text AS ms FROM unnest($1::text[]) WITH ORDINALITY AS t(v, n) ORDER BY n`,
      [values],
    );
    return rows.map((row) => Number(row.ms));
  };

  it('reads every instant the rule takes as Date does', async () => {
    const offsets = fc.integer({ min: -(15 * 60 + 59), max: 15 * 60 + 59 });
    const samples = fc.sample(
      fc.tuple(fc.date({ min: new Date('0001-01-02T00:00:00Z'), max: new Date('9999-12-30T00:00:00Z'), noInvalidDate: true }), offsets, fc.integer({ min: 0, max: 999_999 })),
      500,
    );
    const values = samples.map(([instant, offsetMinutes, micros]) => {
      const local = new Date(instant.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 19);
      const sign = offsetMinutes < 0 ? '-' : '+';
      const offset = `${sign}${String(Math.floor(Math.abs(offsetMinutes) / 60)).padStart(2, '0')}:${String(Math.abs(offsetMinutes) % 60).padStart(2, '0')}`;
      return `${local}.${String(micros).padStart(6, '0')}${offset}`;
    });
    values.push('2026-11-21T10:00Z', '2026-11-21T10:00:00Z', '2024-02-29T23:59:59-15:59', '0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999999Z');
    for (const value of values) expect(isInstant(value)).toBe(true);
    expect(await readByPostgres(values)).toEqual(values.map((value) => parseInstant(value)?.getTime()));
  });

  it('refuses, or reads otherwise, shapes the rule refuses: the reason it refuses them', async () => {
    const readOrRefused = async (value: string) => {
      try {
        return (await readByPostgres([value]))[0];
      } catch {
        return 'refused';
      }
    };
    expect(isInstant('2026-11')).toBe(false);
    expect(await readOrRefused('2026-11')).toBe('refused');
    expect(isInstant('2026-012')).toBe(false);
    expect(await readOrRefused('2026-012')).toBe(Date.UTC(2026, 0, 12) - 5.75 * 3_600_000); // 12 January, Kathmandu; Date reads 1 December
    expect(isInstant('2026-11-21T10:00:00')).toBe(false);
    expect(await readOrRefused('2026-11-21T10:00:00')).toBe(Date.UTC(2026, 10, 21, 10) - 5.75 * 3_600_000); // the session's zone
    expect(isInstant('2026-11-21T10:00:00+16:00')).toBe(false);
    expect(await readOrRefused('2026-11-21T10:00:00+16:00')).toBe('refused');
  });
});

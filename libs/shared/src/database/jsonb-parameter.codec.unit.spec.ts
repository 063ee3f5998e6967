import fc from 'fast-check';
import { jsonbParameter } from './jsonb-parameter.codec';

/** What PostgreSQL receives: jsonb's version byte, then JSON.stringify's text in UTF-8. */
const expected = (value: unknown): Buffer => Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify(value), 'utf8')]);

describe('jsonbParameter', () => {
  it('given any JSON value, when encoded, then the bytes are the version byte and JSON.stringify of it', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => expect(jsonbParameter(value).equals(expected(value))).toBe(true)));
  });

  it('given arrays of every length around the piece size, when encoded, then the bytes are those of JSON.stringify', () => {
    // Rows as the append and the projection send them: arrays of strings (some beyond ASCII), numbers, nulls, objects.
    const row = fc.tuple(fc.string({ unit: 'grapheme' }), fc.integer(), fc.constant(null), fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }));
    fc.assert(
      fc.property(fc.array(row, { minLength: 0, maxLength: 70, size: 'max' }), (rows) => expect(jsonbParameter(rows).equals(expected(rows))).toBe(true)),
      { numRuns: 300 },
    );
  });

  it('given elements JSON writes as null (undefined, functions, holes), when in a long array, then they are null as in JSON.stringify', () => {
    const rows: unknown[] = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? undefined : i % 3 === 1 ? () => i : `é-${i}`));
    rows.length = 45; // holes at the end
    expect(jsonbParameter(rows).equals(expected(rows))).toBe(true);
    expect(jsonbParameter([]).equals(expected([]))).toBe(true);
  });
});

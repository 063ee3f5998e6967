import { isSqlIdentifier, quoteIdentifier } from './sql-identifier.parser';

describe('SQL identifiers', () => {
  it('quotes plain lower-case identifiers up to 63 characters', () => {
    expect(quoteIdentifier('ledger')).toBe('"ledger"');
    expect(quoteIdentifier(`_${'a'.repeat(62)}`)).toBe(`"_${'a'.repeat(62)}"`);
  });

  it('refuses anything else, naming what it was for', () => {
    for (const bad of ['', 'Ledger', '1ledger', 'led"ger', 'a b', 'a;drop', 'a'.repeat(64)]) {
      expect(isSqlIdentifier(bad)).toBe(false);
      expect(() => quoteIdentifier(bad, 'schema for Kafka offsets')).toThrow(/invalid schema for Kafka offsets/);
    }
  });
});

/**
 * The one rule for SQL identifiers Tally splices into statements (schema names: identifiers cannot be bound
 * parameters). They come from validated configuration, never from users, but anything odd is refused rather than
 * escaped: lower-case letters, digits and underscores, not starting with a digit, at most 63 characters
 * (PostgreSQL's NAMEDATALEN - 1).
 */
export const SQL_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export function isSqlIdentifier(name: unknown): name is string {
  return typeof name === 'string' && SQL_IDENTIFIER.test(name);
}

/** `"name"` for a valid identifier; throws naming `what` (e.g. "schema for Kafka offsets") otherwise. */
export function quoteIdentifier(name: string, what = 'SQL identifier'): string {
  if (!isSqlIdentifier(name)) throw new Error(`invalid ${what}: ${JSON.stringify(name)} (expected ${SQL_IDENTIFIER.source})`);
  return `"${name}"`;
}

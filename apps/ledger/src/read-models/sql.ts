/** A double-quoted SQL identifier; schema names come from validated config, this only guards the quoting. */
export function quoteIdent(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

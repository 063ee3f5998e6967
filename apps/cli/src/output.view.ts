/** Plain-text tables and JSON for the terminal: what an operator reads or pipes into jq. */

export type Row = Record<string, unknown>;

const cell = (value: unknown): string =>
  value === null || value === undefined ? '' : value instanceof Date ? value.toISOString() : typeof value === 'object' ? JSON.stringify(value) : String(value);

/** Columns padded to their widest cell, a header line, one line per row; "(none)" for no rows. */
export function table(rows: readonly Row[], columns: readonly string[] = rows.length > 0 ? Object.keys(rows[0]) : []): string {
  if (rows.length === 0) return '(none)';
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]).length)));
  const line = (values: string[]) => values.map((value, i) => value.padEnd(widths[i])).join('  ').trimEnd();
  return [line([...columns]), ...rows.map((row) => line(columns.map((column) => cell(row[column]))))].join('\n');
}

export function json(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

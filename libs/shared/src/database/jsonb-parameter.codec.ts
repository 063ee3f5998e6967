/** jsonb's binary input format: a version byte (1), then the JSON text. */
const JSONB_BINARY_VERSION = 1;

/**
 * `value` as a jsonb parameter in PostgreSQL's binary format (pg sends a Buffer as a binary parameter): the JSON text
 * is garbage at once, and the bytes the query keeps until PostgreSQL answers live outside V8's heap, where no
 * scavenge copies them (as strings, a batch's parameters were the largest objects its statement kept alive).
 */
export function jsonbParameter(value: unknown): Buffer {
  const text = JSON.stringify(value);
  const bytes = Buffer.allocUnsafe(1 + Buffer.byteLength(text));
  bytes[0] = JSONB_BINARY_VERSION;
  bytes.write(text, 1);
  return bytes;
}

/** jsonb's binary input format: a version byte (1), then the JSON text. */
const JSONB_BINARY_VERSION = 1;

/**
 * An array's elements are turned into JSON this many at a time. V8's JSON.stringify costs 3–6× as much per element
 * once its result passes ~128 KB (0.4 µs against 2.7 µs for a 16-property object; V8's largest regular heap object is
 * 128 KB, and a profile shows the time in copying the result), and the append's and the projection's parameters are
 * 0.1–1 MB at full rate: built whole, they cost the commands process and the projector ~10 µs a usage each, in pieces
 * ~5–7 (docs/benchmarks.md session 30).
 */
const ELEMENTS_PER_TEXT = 16;
const OPEN = 0x5b; // [
const COMMA = 0x2c;
const CLOSE = 0x5d; // ]

/**
 * `value` as a jsonb parameter in PostgreSQL's binary format (pg sends a Buffer as a binary parameter): the JSON text
 * is garbage at once, and the bytes the query keeps until PostgreSQL answers live outside V8's heap, where no
 * scavenge copies them (as strings, a batch's parameters were the largest objects its statement kept alive).
 * The bytes are JSON.stringify(value)'s, whatever the value; a long array's are written in pieces (ELEMENTS_PER_TEXT).
 */
export function jsonbParameter(value: unknown): Buffer {
  if (Array.isArray(value) && value.length > ELEMENTS_PER_TEXT) return arrayInPieces(value);
  const text = JSON.stringify(value);
  const bytes = Buffer.allocUnsafe(1 + Buffer.byteLength(text));
  bytes[0] = JSONB_BINARY_VERSION;
  bytes.write(text, 1);
  return bytes;
}

/** The array's JSON written from the JSON of its pieces, each without its brackets (slice shares, never copies). */
function arrayInPieces(elements: readonly unknown[]): Buffer {
  const pieces: string[] = [];
  let length = 1 + 2 + Math.ceil(elements.length / ELEMENTS_PER_TEXT) - 1; // version, brackets, commas between pieces
  for (let i = 0; i < elements.length; i += ELEMENTS_PER_TEXT) {
    const piece = JSON.stringify(elements.slice(i, i + ELEMENTS_PER_TEXT)).slice(1, -1);
    pieces.push(piece);
    length += Buffer.byteLength(piece);
  }
  const bytes = Buffer.allocUnsafe(length);
  bytes[0] = JSONB_BINARY_VERSION;
  bytes[1] = OPEN;
  let at = 2;
  for (const [index, piece] of pieces.entries()) {
    if (index > 0) bytes[at++] = COMMA;
    at += bytes.write(piece, at);
  }
  bytes[at] = CLOSE;
  return bytes;
}

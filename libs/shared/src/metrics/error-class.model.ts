/**
 * A bounded label for why something failed (a metric label never carries the message): PostgreSQL errors by
 * SQLSTATE class, connection loss, Kafka, timeouts, or `other`.
 */
export type ErrorClass = 'connection' | 'conflict' | 'database' | 'kafka' | 'timeout' | 'other';

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

export function errorClass(error: unknown): ErrorClass {
  if (typeof error !== 'object' || error === null) return 'other';
  const { code, name, message } = error as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (CONNECTION_CODES.has(code)) return 'connection';
    // SQLSTATE: 08 connection exception (but 08P01, a message the server refused as malformed: a bug of ours), 57P0x
    // shutdown, 40 serialization failure / deadlock, 57014 statement timeout.
    if (/^[0-9A-Z]{5}$/.test(code)) {
      if ((code.startsWith('08') && code !== '08P01') || code.startsWith('57P')) return 'connection';
      if (code.startsWith('40')) return 'conflict';
      if (code === '57014') return 'timeout';
      return 'database';
    }
  }
  if (typeof name === 'string' && name.startsWith('KafkaJS')) return 'kafka';
  if (typeof message === 'string' && /Connection terminated|connection timeout|timeout exceeded when trying to connect/i.test(message)) return 'connection';
  return 'other';
}

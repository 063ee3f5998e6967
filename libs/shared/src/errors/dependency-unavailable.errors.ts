/** The dependency an error says cannot be reached right now (retrying later may succeed), if it says so. */
export type UnavailableDependency = 'postgres' | 'kafka' | 'event-store';

/** Socket-level failures: the server is down, restarting or unreachable. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * PostgreSQL SQLSTATEs of a server going away or not there yet: class 08 (connection exception) but 08P01
 * (protocol_violation: the server refused a malformed message, such as a statement bound with the wrong number of
 * parameters; a bug of the client's, which retrying later repeats, so a 500 and not a 503), 57P01
 * admin_shutdown ("terminating connection due to administrator command"), 57P02 crash_shutdown, 57P03
 * cannot_connect_now ("the database system is starting up"), 53300 too_many_connections.
 */
const PG_UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** Class 08 states that are not an outage (see PG_UNAVAILABLE_STATES). */
const PG_CLIENT_FAULT_STATES = new Set(['08P01']);

/**
 * node-postgres reports a lost or unobtainable connection with these messages and no code, and a statement the server
 * did not answer within the pool's `query_timeout` (PG_QUERY_TIMEOUT_MS: a frozen server, a dead network path, a row
 * lock held elsewhere) as "Query read timeout": the database cannot serve now, so a retry later with the same key.
 */
const PG_CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable|Cannot use a pool after calling end|^Query read timeout$/i;

/** kafkajs errors (by name: they may come from another realm) that mean the cluster cannot be reached. */
const KAFKA_UNAVAILABLE_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSLockTimeout',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTimeout',
]);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  retriable?: unknown;
  cause?: unknown;
  originalError?: unknown;
  driverError?: unknown;
}

/** Whether this one error (not its causes) is a PostgreSQL connection failure. */
export function isPgConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as ErrorLike;
  if (typeof code === 'string' && (SOCKET_CODES.has(code) || PG_UNAVAILABLE_STATES.has(code) || (/^08[0-9A-Z]{3}$/.test(code) && !PG_CLIENT_FAULT_STATES.has(code)))) return true;
  return PG_CONNECTION_MESSAGES.test(String(message ?? ''));
}

function classifyOne(error: ErrorLike): UnavailableDependency | undefined {
  const name = typeof error.name === 'string' ? error.name : '';
  if (name.startsWith('KafkaJS')) {
    // A protocol error flagged retriable is a leader election or a broker restarting (LEADER_NOT_AVAILABLE …).
    return KAFKA_UNAVAILABLE_NAMES.has(name) || (name === 'KafkaJSProtocolError' && error.retriable === true) ? 'kafka' : undefined;
  }
  if (name === 'EventStoreError') return error.code === 'UNAVAILABLE' ? 'event-store' : undefined;
  // TypeORM marks a query runner released the moment its connection reports an error (a restart ends the backend
  // between two statements of a transaction); the next statement then fails with one of these, not the driver's error
  // (the second through a transaction's EntityManager, DataSource.transaction's).
  if (name === 'QueryRunnerAlreadyReleasedError' || name === 'QueryRunnerProviderAlreadyReleasedError') return 'postgres';
  return isPgConnectionError(error) ? 'postgres' : undefined;
}

/**
 * Which dependency an error (or one of its causes: `cause`, kafkajs's `originalError`, TypeORM's `driverError`) says is unreachable, or
 * undefined when it is any other error. Duck-typed, because drivers' errors may come from another realm.
 */
export function unavailableDependency(error: unknown): UnavailableDependency | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const found = classifyOne(current as ErrorLike);
    if (found) return found;
    const { cause, originalError, driverError } = current as ErrorLike;
    current = cause ?? originalError ?? driverError;
  }
  return undefined;
}

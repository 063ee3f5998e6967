import { isPgConnectionError, unavailableDependency } from './dependency-unavailable.errors';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });
const named = (name: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(name), { name, ...extra });

describe('unavailableDependency', () => {
  it.each([
    ['a restart terminating the session (57P01)', pgError('57P01', 'terminating connection due to administrator command')],
    ['a server starting up (57P03)', pgError('57P03', 'the database system is starting up')],
    ['a connection exception (08006)', pgError('08006')],
    ['a refused connection', pgError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')],
    ['a connection lost mid-query', new Error('Connection terminated unexpectedly')],
    ['a broken client reused', new Error('Client has encountered a connection error and is not queryable')],
    // pg's own error for a statement not answered within the pool's query_timeout (PG_QUERY_TIMEOUT_MS), no code.
    ['a statement not answered in time', new Error('Query read timeout')],
  ])('blames PostgreSQL for %s', (_case, error) => {
    expect(unavailableDependency(error)).toBe('postgres');
    expect(isPgConnectionError(error)).toBe(true);
  });

  it('does not blame PostgreSQL for a message it refused as malformed (08P01 protocol_violation is a bug of ours, not an outage)', () => {
    // What a prepared statement bound with a parameter too many answers: retrying it later fails the same way.
    const error = pgError('08P01', 'bind message supplies 3 parameters, but prepared statement "tally-read-streams" requires 2');
    expect(isPgConnectionError(error)).toBe(false);
    expect(unavailableDependency(error)).toBeUndefined();
  });

  it('blames Kafka for kafkajs connection errors, retries exhausted and retriable protocol errors', () => {
    expect(unavailableDependency(named('KafkaJSConnectionError'))).toBe('kafka');
    expect(unavailableDependency(named('KafkaJSNumberOfRetriesExceeded', { originalError: named('KafkaJSConnectionError') }))).toBe('kafka');
    expect(unavailableDependency(named('KafkaJSProtocolError', { retriable: true, type: 'LEADER_NOT_AVAILABLE' }))).toBe('kafka');
    expect(unavailableDependency(named('KafkaJSProtocolError', { retriable: false, type: 'MESSAGE_TOO_LARGE' }))).toBeUndefined();
  });

  it('follows causes: an event store error wrapping a lost connection, a wrapper of a pg error', () => {
    expect(unavailableDependency(named('EventStoreError', { code: 'UNAVAILABLE' }))).toBe('event-store');
    expect(unavailableDependency(new Error('load failed', { cause: pgError('57P01') }))).toBe('postgres');
    expect(unavailableDependency(named('QueryFailedError', { driverError: new Error('Connection terminated unexpectedly') }))).toBe('postgres');
  });

  it('leaves every other error alone (they stay 4xx or 500)', () => {
    expect(unavailableDependency(pgError('23505', 'duplicate key value'))).toBeUndefined();
    expect(unavailableDependency(pgError('22003', 'bigint out of range'))).toBeUndefined();
    expect(unavailableDependency(named('EventStoreError', { code: 'WRONG_EXPECTED_VERSION' }))).toBeUndefined();
    expect(unavailableDependency(new TypeError('x is undefined'))).toBeUndefined();
    expect(unavailableDependency(undefined)).toBeUndefined();
    expect(unavailableDependency('ECONNREFUSED')).toBeUndefined();
  });
});

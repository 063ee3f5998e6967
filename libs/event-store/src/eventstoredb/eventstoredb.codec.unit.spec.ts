import fc from 'fast-check';
import { ANY, NO_STREAM } from '@eventstore/db-client';
import { START } from '../event-store.port';
import {
  comparePositions,
  decodeEsdbCheckpoint,
  encodeEsdbCheckpoint,
  isSystemEvent,
  toExpectedRevision,
  toJsonObject,
  versionOf,
  versionOfCurrent,
} from './eventstoredb.codec';

const position = fc.record({ commit: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), prepare: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) });

describe('EventStoreDB mapping', () => {
  it('maps 1-based versions to 0-based revisions and back', () => {
    expect(toExpectedRevision('any')).toBe(ANY);
    expect(toExpectedRevision('no_stream')).toBe(NO_STREAM);
    expect(toExpectedRevision(0)).toBe(NO_STREAM);
    expect(toExpectedRevision(1)).toBe(0n);
    expect(toExpectedRevision(42)).toBe(41n);
    expect(versionOf(0n)).toBe(1);
    expect(versionOfCurrent(NO_STREAM)).toBe(0);
    expect(versionOfCurrent(9n)).toBe(10);
  });

  it('encodes positions as checkpoints that round-trip and sort like positions', () => {
    fc.assert(
      fc.property(position, position, (a, b) => {
        const [ea, eb] = [encodeEsdbCheckpoint(a), encodeEsdbCheckpoint(b)];
        expect(decodeEsdbCheckpoint(ea)).toEqual(a);
        expect(ea < eb ? -1 : ea > eb ? 1 : 0).toBe(comparePositions(a, b));
      }),
    );
    expect(decodeEsdbCheckpoint(START)).toBeUndefined();
    expect(() => decodeEsdbCheckpoint('nope')).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  });

  it('recognises system streams and events', () => {
    expect(isSystemEvent('$stats-127.0.0.1:2113', 'Stats')).toBe(true);
    expect(isSystemEvent('account-1', '$metadata')).toBe(true);
    expect(isSystemEvent('account-1', 'CreditsPurchased')).toBe(false);
  });

  it('decodes data and metadata into objects', () => {
    expect(toJsonObject({ a: 1 })).toEqual({ a: 1 });
    expect(toJsonObject(undefined)).toEqual({});
    expect(toJsonObject(new Uint8Array())).toEqual({});
    expect(toJsonObject(Uint8Array.from(Buffer.from('{"b":2}')))).toEqual({ b: 2 });
  });
});

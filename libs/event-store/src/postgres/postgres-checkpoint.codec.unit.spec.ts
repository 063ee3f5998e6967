import fc from 'fast-check';
import { EventStoreErrorCode } from '../event-store.errors';
import { START } from '../event-store.port';
import { decodePgCheckpoint, encodePgCheckpoint } from './postgres-checkpoint.codec';

const position = fc.record({
  transactionId: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  globalPosition: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }),
});

describe('PostgreSQL checkpoint', () => {
  it('round-trips', () => {
    fc.assert(fc.property(position, (p) => expect(decodePgCheckpoint(encodePgCheckpoint(p))).toEqual(p)));
  });

  it('orders as strings exactly like (transaction_id, global_position) pairs', () => {
    fc.assert(
      fc.property(position, position, (a, b) => {
        const byPair =
          a.transactionId !== b.transactionId
            ? Math.sign(Number(a.transactionId - b.transactionId))
            : Math.sign(Number(a.globalPosition - b.globalPosition));
        const ea = encodePgCheckpoint(a);
        const eb = encodePgCheckpoint(b);
        expect(ea < eb ? -1 : ea > eb ? 1 : 0).toBe(byPair);
      }),
    );
  });

  it('sorts START before every checkpoint and decodes it as the origin', () => {
    expect(decodePgCheckpoint(START)).toEqual({ transactionId: 0n, globalPosition: 0n });
    fc.assert(fc.property(position, (p) => expect(START < encodePgCheckpoint(p)).toBe(true)));
  });

  it.each(['garbage', '1-2', `${'0'.repeat(20)}:${'0'.repeat(20)}`])('rejects %p', (bad) => {
    expect(() => decodePgCheckpoint(bad)).toThrow(expect.objectContaining({ code: EventStoreErrorCode.INVALID_REQUEST }));
  });
});

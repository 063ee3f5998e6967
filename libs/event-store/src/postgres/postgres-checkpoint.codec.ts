import { START, type Checkpoint } from '../event-store.port';
import { EventStoreError, EventStoreErrorCode } from '../event-store.errors';

/**
 * A PostgreSQL checkpoint is the pair (transaction_id, global_position), the order in which readAll returns
 * events. Both are encoded as zero-padded decimals (xid8 < 2^64 needs 20 digits, bigint 19; we pad both to 20)
 * so plain string comparison orders checkpoints exactly like the pairs.
 */
export interface PgPosition {
  transactionId: bigint;
  globalPosition: bigint;
}

const WIDTH = 20;
const FORMAT = /^(\d{20})-(\d{20})$/;

export function encodePgCheckpoint(p: PgPosition): Checkpoint {
  return `${p.transactionId.toString().padStart(WIDTH, '0')}-${p.globalPosition.toString().padStart(WIDTH, '0')}`;
}

export function decodePgCheckpoint(checkpoint: Checkpoint): PgPosition {
  if (checkpoint === START) return { transactionId: 0n, globalPosition: 0n };
  const match = FORMAT.exec(checkpoint);
  if (!match) {
    throw new EventStoreError(EventStoreErrorCode.INVALID_REQUEST, 'not a PostgreSQL event store checkpoint', {
      checkpoint,
    });
  }
  return { transactionId: BigInt(match[1]), globalPosition: BigInt(match[2]) };
}

// Pure translations between the port and EventStoreDB's client types, kept apart so they are unit-tested
// without a server.
import { ANY, NO_STREAM, type AppendExpectedRevision, type Position } from '@eventstore/db-client';
import { START, type Checkpoint, type ExpectedVersion } from '../event-store.port';
import { EventStoreError, EventStoreErrorCode } from '../event-store.errors';

/** Our versions are 1-based counts (0 = empty); ESDB revisions are 0-based indexes of the last event. */
export function toExpectedRevision(expected: ExpectedVersion): AppendExpectedRevision {
  if (expected === 'any') return ANY;
  if (expected === 'no_stream' || expected === 0) return NO_STREAM;
  return BigInt(expected - 1);
}

export function versionOf(revision: bigint): number {
  return Number(revision) + 1;
}

/** 'no_stream' or the revision of the last event, as our version. */
export function versionOfCurrent(current: bigint | string): number {
  return typeof current === 'bigint' ? versionOf(current) : 0;
}

const WIDTH = 20;
const FORMAT = /^(\d{20})-(\d{20})$/;

/** (commit, prepare) zero-padded so string comparison orders checkpoints like positions in $all. */
export function encodeEsdbCheckpoint(p: Position): Checkpoint {
  return `${p.commit.toString().padStart(WIDTH, '0')}-${p.prepare.toString().padStart(WIDTH, '0')}`;
}

export function decodeEsdbCheckpoint(checkpoint: Checkpoint): Position | undefined {
  if (checkpoint === START) return undefined;
  const match = FORMAT.exec(checkpoint);
  if (!match) {
    throw new EventStoreError(EventStoreErrorCode.INVALID_REQUEST, 'not an EventStoreDB checkpoint', { checkpoint });
  }
  return { commit: BigInt(match[1]), prepare: BigInt(match[2]) };
}

export function comparePositions(a: Position, b: Position): number {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1;
  if (a.prepare !== b.prepare) return a.prepare < b.prepare ? -1 : 1;
  return 0;
}

/** System streams and events ($-prefixed: $stats, $> links, $metadata…) are not ours to deliver. */
export function isSystemEvent(streamId: string, type: string): boolean {
  return streamId.startsWith('$') || type.startsWith('$');
}

/** JSON events come back parsed; anything else (binary, malformed) is decoded best-effort. */
export function toJsonObject(value: unknown): Record<string, unknown> {
  if (value instanceof Uint8Array) {
    if (value.length === 0) return {};
    return toJsonObject(JSON.parse(Buffer.from(value).toString('utf8')));
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  return value === undefined || value === null ? {} : { value };
}

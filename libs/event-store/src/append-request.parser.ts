import type { AppendRequest, ExpectedVersion, StreamRead } from './event-store.port';
import { EventStoreError, EventStoreErrorCode } from './event-store.errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A readStreams call's streams, each with the version to read from (the lowest, for a stream asked for twice),
 * checked as appends are: a bad request fails early, with one code, in both adapters.
 */
export function parseStreamReads(requests: readonly StreamRead[]): Map<string, number> {
  const from = new Map<string, number>();
  for (const { streamId, fromVersion } of requests) {
    if (typeof streamId !== 'string' || streamId.length === 0) throw invalid('streamId must be a non-empty string', { streamId });
    if (!Number.isSafeInteger(fromVersion) || fromVersion < 1) throw invalid('fromVersion must be a positive integer', { streamId, fromVersion });
    from.set(streamId, Math.min(fromVersion, from.get(streamId) ?? fromVersion));
  }
  return from;
}

/** A readEvents call's ids, checked before they reach SQL (a bad uuid would abort the caller's transaction). */
export function parseEventIds(ids: readonly string[]): string[] {
  for (const id of ids) if (typeof id !== 'string' || !UUID.test(id)) throw invalid('event ids must be uuids', { id });
  return [...new Set(ids)];
}

/**
 * Checks what both adapters would otherwise reject late and differently (PG with a SQL error that aborts the
 * caller's transaction, ESDB with a gRPC error): fail early, with one code.
 */
export function validateAppendRequests(reqs: AppendRequest[]): void {
  const seen = new Set<string>();
  for (const req of reqs) {
    if (typeof req.streamId !== 'string' || req.streamId.length === 0) {
      throw invalid('streamId must be a non-empty string', { streamId: req.streamId });
    }
    if (!isExpectedVersion(req.expectedVersion)) {
      throw invalid('expectedVersion must be a non-negative integer, "any" or "no_stream"', {
        streamId: req.streamId,
        expectedVersion: req.expectedVersion,
      });
    }
    if (!Array.isArray(req.events)) throw invalid('events must be an array', { streamId: req.streamId });
    for (const event of req.events) {
      if (typeof event.type !== 'string' || event.type.length === 0) {
        throw invalid('event type must be a non-empty string', { streamId: req.streamId, eventId: event.id });
      }
      if (!isPlainObject(event.data) || (event.metadata !== undefined && !isPlainObject(event.metadata))) {
        throw invalid('event data and metadata must be JSON objects', { streamId: req.streamId, eventId: event.id });
      }
      if (!UUID.test(event.id)) throw invalid('event id must be a uuid', { streamId: req.streamId, eventId: event.id });
      const id = event.id.toLowerCase();
      // The same id twice in one call can never be stored twice; treating it as a conflict keeps retries honest.
      if (seen.has(id)) throw invalid('the same event id appears twice in one append', { eventId: event.id });
      seen.add(id);
    }
  }
}

function isExpectedVersion(v: ExpectedVersion): boolean {
  return v === 'any' || v === 'no_stream' || (Number.isSafeInteger(v) && v >= 0);
}

function isPlainObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(message: string, details: Record<string, unknown>): EventStoreError {
  return new EventStoreError(EventStoreErrorCode.INVALID_REQUEST, message, details);
}

import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  START as ESDB_START,
  StreamNotFoundError,
  WrongExpectedVersionError,
  excludeSystemEvents,
  jsonEvent,
  type AllStreamSubscription,
  type Position,
  type RecordedEvent as EsdbRecordedEvent,
} from '@eventstore/db-client';
import type {
  AppendRequest,
  AppendResult,
  Checkpoint,
  EventStore,
  RecordedEvent,
  ReadStreamsOptions,
  StreamHead,
  StreamRead,
  Subscription,
  SubscribeToAllJsonOptions,
  SubscribeToAllOptions,
  UnitOfWork,
} from '../event-store.port';
import { headAt, recordedEventAsJson } from '../event-store.port';
import { EventStoreError, EventStoreErrorCode } from '../event-store.errors';
import { parseStreamReads, validateAppendRequests } from '../append-request.parser';
import { SubscriptionRegistry } from '../subscription-registry.service';
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

const RETRY_BACKOFF_MS = 1_000;
/** streamHeads reads this many streams' last events at once. */
const VERSION_READS_IN_FLIGHT = 32;

/**
 * The EventStoreDB adapter. Differences from PostgreSQL, all covered by idempotent event ids:
 * - appendMany is NOT atomic across streams (ESDB has no multi-stream transaction): it appends stream by stream,
 *   stops at the first failure and leaves earlier streams written. Retrying the whole call is safe because each
 *   stream's events carry the same ids at the same positions and come back as duplicates.
 * - No `joinTransaction`: there is no transaction to share with the caller (e.g. with Kafka offsets kept in
 *   PostgreSQL), so the ledger takes its idempotent path: append, then store the offset (README).
 * - streamHeads reads each stream's last event (one read per stream, 32 at a time).
 * - Duplicates are detected by reading the positions the request targets (numeric / no_stream expectations),
 *   or the stream's last events for 'any'; an id reused in another stream is not detected (ESDB ids are not
 *   globally unique).
 * - subscribeToAll uses ESDB's catch-up subscription and delivers one event per onEvents call.
 */
export class EventStoreDbEventStore implements EventStore {
  private readonly subscriptions = new SubscriptionRegistry();

  constructor(
    private readonly client: EventStoreDBClient,
    /** When true (fromConnectionString), close() disposes the client. */
    private readonly ownsClient = false,
  ) {}

  static fromConnectionString(connectionString: string): EventStoreDbEventStore {
    return new EventStoreDbEventStore(EventStoreDBClient.connectionString(connectionString), true);
  }

  async append(req: AppendRequest): Promise<AppendResult> {
    validateAppendRequests([req]);
    return this.appendValidated(req);
  }

  async appendMany(reqs: AppendRequest[], unitOfWork?: UnitOfWork): Promise<AppendResult[]> {
    if (unitOfWork !== undefined) {
      // Only reachable by a cast: this store has no joinTransaction to make one.
      throw new EventStoreError(EventStoreErrorCode.INVALID_REQUEST, 'EventStoreDB cannot join an external transaction');
    }
    validateAppendRequests(reqs);
    const results: AppendResult[] = [];
    for (const req of reqs) results.push(await this.appendValidated(req));
    return results;
  }

  async streamHeads(streamIds: string[], unitOfWork?: UnitOfWork): Promise<Map<string, StreamHead>> {
    if (unitOfWork !== undefined) {
      throw new EventStoreError(EventStoreErrorCode.INVALID_REQUEST, 'EventStoreDB cannot join an external transaction');
    }
    const unique = [...new Set(streamIds)];
    const heads = new Map<string, StreamHead>();
    try {
      for (let i = 0; i < unique.length; i += VERSION_READS_IN_FLIGHT) {
        const slice = unique.slice(i, i + VERSION_READS_IN_FLIGHT);
        const read = await Promise.all(slice.map((streamId) => this.readLast(streamId, 1)));
        slice.forEach((streamId, j) => {
          const [last] = read[j];
          heads.set(streamId, last === undefined ? { version: 0 } : headAt(last));
        });
      }
    } catch (e) {
      throw toEventStoreError(e);
    }
    return heads;
  }

  async readStream(streamId: string, opts: { fromVersion?: number; toVersion?: number } = {}): Promise<RecordedEvent[]> {
    const from = Math.max(opts.fromVersion ?? 1, 1);
    if (opts.toVersion !== undefined && opts.toVersion < from) return [];
    const maxCount = opts.toVersion === undefined ? undefined : BigInt(opts.toVersion - from + 1);
    const out: RecordedEvent[] = [];
    try {
      for await (const resolved of this.client.readStream(streamId, { fromRevision: BigInt(from - 1), maxCount })) {
        if (resolved.event) out.push(toRecordedEvent(resolved.event));
      }
    } catch (e) {
      if (e instanceof StreamNotFoundError) return [];
      throw toEventStoreError(e);
    }
    return out;
  }

  /** EventStoreDB reads one stream per call: the streams are read concurrently, each event's metadata whole. */
  async readStreams(requests: readonly StreamRead[], _options?: ReadStreamsOptions): Promise<Map<string, RecordedEvent[]>> {
    const from = parseStreamReads(requests);
    const streams = [...from];
    const read = await Promise.all(streams.map(([streamId, fromVersion]) => this.readStream(streamId, { fromVersion })));
    return new Map(streams.map(([streamId], i) => [streamId, read[i]]));
  }

  /** $all read forwards from `after` (inclusive in ESDB, so positions <= after are skipped), system events left out. */
  async readAll(opts: { after: Checkpoint; limit: number }): Promise<RecordedEvent[]> {
    if (!Number.isSafeInteger(opts.limit) || opts.limit < 1) {
      throw new EventStoreError(EventStoreErrorCode.INVALID_REQUEST, 'limit must be a positive integer', {
        limit: opts.limit,
      });
    }
    let floor = decodeEsdbCheckpoint(opts.after);
    // Pages may be mostly system events: keep reading until `limit` of ours or the end of $all.
    const pageSize = Math.min(Math.max(opts.limit + 1, 64), 4096);
    const out: RecordedEvent[] = [];
    try {
      for (;;) {
        let seen = 0;
        for await (const resolved of this.client.readAll({
          fromPosition: floor ?? ESDB_START,
          maxCount: BigInt(pageSize),
          direction: FORWARDS,
        })) {
          seen++;
          const event = resolved.event;
          if (!event?.position) continue;
          if (floor && comparePositions(event.position, floor) <= 0) continue;
          floor = event.position;
          if (isSystemEvent(event.streamId, event.type)) continue;
          out.push(toRecordedEvent(event));
          if (out.length === opts.limit) return out;
        }
        if (seen < pageSize) return out;
      }
    } catch (e) {
      throw toEventStoreError(e);
    }
  }

  subscribeToAll(opts: SubscribeToAllOptions): Subscription {
    return this.subscriptions.track(new EsdbSubscription(this.client, opts, decodeEsdbCheckpoint(opts.after)));
  }

  /** The client parses every event: printed again here (the port's fallback). */
  subscribeToAllJson({ metadataKeys, onEvents, ...opts }: SubscribeToAllJsonOptions): Subscription {
    return this.subscribeToAll({ ...opts, onEvents: (events) => onEvents(events.map((event) => recordedEventAsJson(event, metadataKeys))) });
  }

  async close(): Promise<void> {
    await this.subscriptions.stopAll();
    if (this.ownsClient) await this.client.dispose();
  }

  private async appendValidated(req: AppendRequest): Promise<AppendResult> {
    const { streamId, expectedVersion, events } = req;
    try {
      if (events.length === 0) {
        // ESDB would accept an empty append; we only check the version, like the PostgreSQL adapter.
        const current = await this.currentVersion(streamId);
        const ok = expectedVersion === 'any' || current === (expectedVersion === 'no_stream' ? 0 : expectedVersion);
        if (!ok) throw EventStoreError.wrongExpectedVersion({ streamId, expected: expectedVersion, actual: current });
        return { streamId, nextExpectedVersion: current, duplicate: false };
      }
      const stored = await this.alreadyStored(req);
      if (stored) return stored;
      const result = await this.client.appendToStream(
        streamId,
        events.map((e) => jsonEvent({ id: e.id, type: e.type, data: e.data, metadata: e.metadata ?? {} })),
        { expectedRevision: toExpectedRevision(expectedVersion) },
      );
      return { streamId, nextExpectedVersion: versionOf(result.nextExpectedRevision), duplicate: false };
    } catch (e) {
      if (e instanceof WrongExpectedVersionError) {
        throw EventStoreError.wrongExpectedVersion(
          { streamId, expected: expectedVersion, actual: versionOfCurrent(e.actualVersion) },
          e,
        );
      }
      throw toEventStoreError(e);
    }
  }

  /**
   * Retry-after-crash: if the events already sit where this request puts them, report a duplicate and write
   * nothing, even if the stream moved on since. ESDB would also dedupe a same-position retry by itself, but would
   * not tell us, and rejects it with a wrong expected version once the stream has moved on.
   */
  private async alreadyStored(req: AppendRequest): Promise<AppendResult | undefined> {
    const ids = req.events.map((e) => e.id.toLowerCase());
    const found =
      req.expectedVersion === 'any'
        ? (await this.readLast(req.streamId, ids.length)).reverse()
        : await this.readStream(req.streamId, {
            fromVersion: (req.expectedVersion === 'no_stream' ? 0 : req.expectedVersion) + 1,
            toVersion: (req.expectedVersion === 'no_stream' ? 0 : req.expectedVersion) + ids.length,
          });
    const matching = found.filter((e, i) => e.id.toLowerCase() === ids[i]).length;
    if (matching === ids.length && found.length === ids.length) {
      return { streamId: req.streamId, nextExpectedVersion: found[found.length - 1].version, duplicate: true };
    }
    const ours = new Set(ids);
    if (found.some((e) => ours.has(e.id.toLowerCase()))) {
      throw new EventStoreError(
        EventStoreErrorCode.IDEMPOTENCY_CONFLICT,
        `stream ${req.streamId}: event ids already stored at other positions`,
        { streamId: req.streamId, stored: found.map((e) => ({ id: e.id, version: e.version })) },
      );
    }
    return undefined;
  }

  private async readLast(streamId: string, count: number): Promise<RecordedEvent[]> {
    const out: RecordedEvent[] = [];
    try {
      for await (const resolved of this.client.readStream(streamId, {
        fromRevision: END,
        direction: BACKWARDS,
        maxCount: BigInt(count),
      })) {
        if (resolved.event) out.push(toRecordedEvent(resolved.event));
      }
    } catch (e) {
      if (e instanceof StreamNotFoundError) return [];
      throw e;
    }
    return out;
  }

  private async currentVersion(streamId: string): Promise<number> {
    const [last] = await this.readLast(streamId, 1);
    return last?.version ?? 0;
  }
}

/**
 * A catch-up subscription on $all without system events. Delivers one event per onEvents call, retrying the same
 * event until it succeeds (never skipping), and resubscribes from the last delivered position after a failure.
 */
class EsdbSubscription implements Subscription {
  private stopped = false;
  private current: AllStreamSubscription | undefined;
  private wakeSleeper: (() => void) | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly client: EventStoreDBClient,
    private readonly opts: SubscribeToAllOptions,
    private position: Position | undefined,
  ) {
    this.done = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeSleeper?.();
    await this.current?.unsubscribe().catch(() => undefined);
    await this.done;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        this.current = this.client.subscribeToAll({
          fromPosition: this.position ?? ESDB_START,
          filter: excludeSystemEvents(),
        });
        for await (const resolved of this.current) {
          if (this.stopped) break;
          const event = resolved.event;
          if (!event?.position || isSystemEvent(event.streamId, event.type)) continue;
          // A resubscription may replay the position we resume from.
          if (this.position && comparePositions(event.position, this.position) <= 0) continue;
          if (!(await this.deliver(toRecordedEvent(event)))) break;
          this.position = event.position;
        }
      } catch (e) {
        if (!this.stopped) {
          this.report(toEventStoreError(e));
          await this.sleep(RETRY_BACKOFF_MS);
        }
      } finally {
        await this.current?.unsubscribe().catch(() => undefined);
        this.current = undefined;
      }
    }
  }

  /** False when stopped before the handler accepted the event. */
  private async deliver(event: RecordedEvent): Promise<boolean> {
    while (!this.stopped) {
      try {
        await this.opts.onEvents([event]);
        return true;
      } catch (e) {
        this.report(e);
        await this.sleep(RETRY_BACKOFF_MS);
      }
    }
    return false;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      this.wakeSleeper = done;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  private report(e: unknown): void {
    try {
      this.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
    } catch {
      // A throwing error handler must not kill the subscription.
    }
  }
}

function toRecordedEvent(event: EsdbRecordedEvent): RecordedEvent {
  return {
    id: event.id,
    streamId: event.streamId,
    version: versionOf(event.revision),
    type: event.type,
    data: toJsonObject(event.data),
    metadata: toJsonObject(event.metadata),
    recordedAt: event.created,
    // Stream reads may lack a position on old servers; such events cannot be used to resume readAll.
    checkpoint: event.position ? encodeEsdbCheckpoint(event.position) : '',
  };
}

function toEventStoreError(e: unknown): unknown {
  // Duck-typed: socket errors may come from another realm (e.g. under Jest), failing `instanceof Error`.
  if (e instanceof EventStoreError || typeof e !== 'object' || e === null || !('message' in e)) return e;
  const { type, message } = e as Error & { type?: string };
  if (type === 'unavailable' || type === 'deadline-exceeded' || type === 'not-leader' || type === 'timeout') {
    return new EventStoreError(EventStoreErrorCode.UNAVAILABLE, `EventStoreDB unavailable: ${String(message)}`, {}, { cause: e });
  }
  return e;
}

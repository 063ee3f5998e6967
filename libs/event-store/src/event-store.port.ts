// The event store port: what the ledger needs from an append-only, stream-partitioned log.
// Two adapters implement it (PostgreSQL, the default, and EventStoreDB); both pass the same contract suite
// (testing/event-store-contract.harness.ts).

export interface NewEvent {
  /** uuid. Idempotency key: appending the same id again at the same position is a no-op. */
  id: string;
  type: string;
  /** JSON-safe. */
  data: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

export interface RecordedEvent {
  id: string;
  streamId: string;
  /** 1-based position in its stream. */
  version: number;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  recordedAt: Date;
  /** Global position token: opaque, and totally ordered by plain string comparison within one adapter. */
  checkpoint: Checkpoint;
}

/**
 * Where a stream ends. The version alone does not tell a stream from one written again after the database went back
 * in time (a failover that lost commits, a restore): the same version then holds another event. Its id mostly does;
 * where the same id was written again (event ids derived from a command's key, and the command retried), the instant
 * it was recorded at does.
 */
export interface StreamHead {
  /** The stream's last event's version; 0 for an empty or missing stream. */
  version: number;
  /** The id of the event at `version`; absent for an empty or missing stream. */
  eventId?: string;
  /** When the event at `version` was recorded; absent for an empty or missing stream. */
  recordedAt?: Date;
}

/** The head of a stream that ends with this event. */
export function headAt(event: RecordedEvent): StreamHead {
  return { version: event.version, eventId: event.id, recordedAt: event.recordedAt };
}

/**
 * A recorded event as JSON text, for a reader that forwards it without reading it (the ledger's relay): the data
 * whole and the asked keys of the metadata, each the JSON text of the stored value (a key the metadata lacks is
 * absent). Parsing a text gives the value `RecordedEvent` carries; its spacing and key order are the adapter's.
 */
export interface RecordedEventJson extends Omit<RecordedEvent, 'data' | 'metadata'> {
  dataJson: string;
  metadataJson: Readonly<Record<string, string>>;
}

/** A RecordedEvent as RecordedEventJson, for an adapter that holds events parsed (EventStoreDB). */
export function recordedEventAsJson(event: RecordedEvent, metadataKeys: readonly string[]): RecordedEventJson {
  const { data, metadata, ...rest } = event;
  const metadataJson: Record<string, string> = {};
  for (const key of metadataKeys) {
    if (Object.hasOwn(metadata, key) && metadata[key] !== undefined) metadataJson[key] = JSON.stringify(metadata[key]);
  }
  return { ...rest, dataJson: JSON.stringify(data), metadataJson };
}

/** Opaque, totally ordered per adapter (string comparison); START = ''. */
export type Checkpoint = string;
export const START: Checkpoint = '';

/** number = the stream's current version (0 = empty or missing); 'no_stream' is the same as 0. */
export type ExpectedVersion = number | 'any' | 'no_stream';

export interface AppendRequest {
  streamId: string;
  expectedVersion: ExpectedVersion;
  events: NewEvent[];
}

export interface AppendResult {
  streamId: string;
  /** The stream's version after this append; for a duplicate, the version of its last (already stored) event. */
  nextExpectedVersion: number;
  /** True when every event was already stored at these positions: nothing was written. */
  duplicate: boolean;
  /**
   * When its events were recorded (their `recordedAt`), where the store can tell at once (PostgreSQL); absent for a
   * duplicate or an append of no events.
   */
  recordedAt?: Date;
}

/** What subscribeToAll delivers: RecordedEvent; subscribeToAllJson: RecordedEventJson. Both carry their position. */
export interface SubscribeToAllOptions<E extends Pick<RecordedEvent, 'checkpoint'> = RecordedEvent> {
  after: Checkpoint;
  batchSize?: number;
  /** Called sequentially, in global order. If it throws, the same events are offered again (never skipped). */
  onEvents: (events: E[]) => Promise<void>;
  onError?: (e: Error) => void;
  /**
   * Called when a read finds nothing more to deliver: everything up to the tail has been handled (a worker whose
   * failures are reported by onError learns here that it is flowing again). The PostgreSQL store calls it; the
   * EventStoreDB adapter does not.
   */
  onCaughtUp?: () => void;
}

/** subscribeToAll's options, the events delivered as JSON text (see RecordedEventJson). */
export interface SubscribeToAllJsonOptions extends SubscribeToAllOptions<RecordedEventJson> {
  /** The metadata keys wanted (each as its value's JSON text). */
  metadataKeys: readonly string[];
}

/**
 * A unit of work the store takes part in: a transaction the CALLER opened and will commit or roll back (the
 * ledger's Kafka consumer, which stores its partition offsets in it). Made only by the store's own
 * `joinTransaction`, accepted only by that store; opaque to everyone else.
 */
export interface UnitOfWork {
  readonly [unitOfWorkBrand]: true;
}
declare const unitOfWorkBrand: unique symbol;

/** What `joinTransaction` needs of the caller's open transaction: for PostgreSQL, a pg PoolClient after BEGIN. */
export interface SqlTransaction {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/** One stream of a readStreams call: its events from `fromVersion` (1 = all) on. */
export interface StreamRead {
  streamId: string;
  fromVersion: number;
}

export interface ReadStreamsOptions {
  /**
   * Only these keys of each event's metadata are needed (a fold that reads `schemaVersion` alone): an adapter that
   * can leave the rest out does (the rest costs the database its output and the reader its parsing); one that cannot
   * returns the whole metadata. A key the event's metadata lacks is absent. Undefined: the whole metadata.
   */
  metadataKeys?: readonly string[];
  /** Read in this transaction (on its connection: a caller holding one needs no second). */
  unitOfWork?: UnitOfWork;
}

export interface AppendOptions {
  /**
   * With a unit of work: wrap the call in a savepoint (default true), so a failed append leaves the caller's
   * transaction usable. A caller that rolls back its whole transaction on any error passes false and saves two
   * round trips.
   */
  savepoint?: boolean;
}

/**
 * Two ways to get exactly-once effects from at-least-once input (README, "Money and exactly-once"):
 * - Shared transaction: a store that can join the caller's transaction has `joinTransaction`; appends made with
 *   the unit of work commit or roll back with whatever else the caller wrote in it (Kafka offsets).
 * - Idempotent append: a store without it (EventStoreDB; PostgreSQL with `transactional: false`) commits each
 *   appendMany on its own. Callers append first and record their progress after; a redelivery re-decides on the
 *   current stream, and deterministic event ids at the expected version make a repeated append a duplicate no-op.
 */
export interface EventStore {
  /**
   * Present only when the store can take part in a transaction the caller opened on the same database.
   * Test `if (store.joinTransaction)`: there is no way to pass a transaction to a store that cannot honour it.
   */
  readonly joinTransaction?: (tx: SqlTransaction) => UnitOfWork;
  append(req: AppendRequest): Promise<AppendResult>;
  /**
   * All-or-nothing where the adapter can (PostgreSQL: one transaction; EventStoreDB: see its adapter). With a
   * unit of work the events are written in it and become visible when the caller commits it.
   */
  appendMany(reqs: AppendRequest[], unitOfWork?: UnitOfWork, options?: AppendOptions): Promise<AppendResult[]>;
  /**
   * Each stream's head, for every id asked: its current version (its last event's; 0 for an empty or missing stream)
   * and the id of the event at that version. With a unit of work, as that transaction sees them (and without locking
   * anything).
   */
  streamHeads(streamIds: string[], unitOfWork?: UnitOfWork): Promise<Map<string, StreamHead>>;
  /** With a unit of work, read in that transaction (on its connection: a caller holding one needs no second). */
  readStream(streamId: string, opts?: { fromVersion?: number; toVersion?: number; unitOfWork?: UnitOfWork }): Promise<RecordedEvent[]>;
  /**
   * Several streams at once, each from its own version (a stream asked for twice, from the lower one), in version
   * order: what readStream gives for each, in one round trip where the adapter can (loading many accounts at once).
   * Every stream asked for has an entry (empty when it has no events from there).
   */
  readStreams(requests: readonly StreamRead[], options?: ReadStreamsOptions): Promise<Map<string, RecordedEvent[]>>;
  /**
   * The stored events among these ids (uuids), from any stream, in no particular order; an id not stored is absent.
   * With a unit of work, as that transaction sees them. Present where the adapter can look an event up by id
   * (PostgreSQL); the ledger's bounded account memory needs it (ledger-domain, account-memory.model.ts).
   */
  readonly readEvents?: (ids: readonly string[], unitOfWork?: UnitOfWork) => Promise<RecordedEvent[]>;
  /**
   * Events strictly after `after`, in global order; a tailing reader never skips an event, and a call returns at least
   * every event any reader (another store, another process) returned before it started.
   */
  readAll(opts: { after: Checkpoint; limit: number }): Promise<RecordedEvent[]>;
  subscribeToAll(opts: SubscribeToAllOptions): Subscription;
  /**
   * subscribeToAll, each event's data and asked metadata keys as JSON text: for a reader that forwards events without
   * reading them (the relay), where an adapter that stores JSON as text saves parsing and printing it again; one that
   * cannot prints what it parsed (`recordedEventAsJson`).
   */
  subscribeToAllJson(opts: SubscribeToAllJsonOptions): Subscription;
  /** Stops every subscription; releases what the adapter created (not an injected pg Pool). */
  close(): Promise<void>;
}

export interface Subscription {
  /** Resolves once the subscription delivers nothing more (an in-flight onEvents has finished). */
  stop(): Promise<void>;
}

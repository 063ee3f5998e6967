// The event store port: what the ledger needs from an append-only, stream-partitioned log.
// Two adapters implement it (PostgreSQL, the default, and EventStoreDB); both pass the same contract suite
// (testing/event-store.contract.ts).

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
}

export interface SubscribeToAllOptions {
  after: Checkpoint;
  batchSize?: number;
  /** Called sequentially, in global order. If it throws, the same events are offered again (never skipped). */
  onEvents: (events: RecordedEvent[]) => Promise<void>;
  onError?: (e: Error) => void;
}

export interface AppendOptions {
  /**
   * With `tx`: wrap the call in a savepoint (default true), so a failed append leaves the caller's transaction
   * usable. A caller that rolls back its whole transaction on any error passes false and saves two round trips.
   */
  savepoint?: boolean;
}

export interface EventStore {
  append(req: AppendRequest): Promise<AppendResult>;
  /**
   * All-or-nothing where the adapter can (PostgreSQL: one transaction; EventStoreDB: see its adapter).
   * `tx` is adapter-specific: for PostgreSQL, a pg.PoolClient inside an open transaction.
   */
  appendMany(reqs: AppendRequest[], tx?: unknown, options?: AppendOptions): Promise<AppendResult[]>;
  readStream(streamId: string, opts?: { fromVersion?: number; toVersion?: number }): Promise<RecordedEvent[]>;
  /** Events strictly after `after`, in global order; a tailing reader never skips an event. */
  readAll(opts: { after: Checkpoint; limit: number }): Promise<RecordedEvent[]>;
  subscribeToAll(opts: SubscribeToAllOptions): Subscription;
  /** Stops every subscription; releases what the adapter created (not an injected pg Pool). */
  close(): Promise<void>;
}

export interface Subscription {
  /** Resolves once the subscription delivers nothing more (an in-flight onEvents has finished). */
  stop(): Promise<void>;
}

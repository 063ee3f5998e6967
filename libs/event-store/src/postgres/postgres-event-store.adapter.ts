import type { Pool, PoolClient } from 'pg';
import { isPgConnectionError, jsonbParameter } from '@tally/shared';
import type {
  AppendOptions,
  AppendRequest,
  AppendResult,
  Checkpoint,
  EventStore,
  ExpectedVersion,
  NewEvent,
  RecordedEvent,
  RecordedEventJson,
  SqlTransaction,
  ReadStreamsOptions,
  StreamHead,
  StreamRead,
  Subscription,
  SubscribeToAllJsonOptions,
  SubscribeToAllOptions,
  UnitOfWork,
} from '../event-store.port';
import { EventStoreError, EventStoreErrorCode, isEventStoreError } from '../event-store.errors';
import { parseEventIds, parseStreamReads, validateAppendRequests } from '../append-request.parser';
import { SubscriptionRegistry } from '../subscription-registry.service';
import { DEFAULT_POLLING, PollingSubscription, type PollingOptions, type WakeUpSource } from '../polling-subscription.worker';
import { decodePgCheckpoint, encodePgCheckpoint } from './postgres-checkpoint.codec';
import { DEFAULT_EVENT_STORE_SCHEMA, assertSchemaName, notifyChannel } from './postgres-schema.migration';

export interface PostgresEventStoreOptions {
  /** Owned by the caller: close() does not end it. */
  pool: Pool;
  schema?: string;
  /** Poll timing of subscribeToAll (defaults: 50 ms idle, doubling up to 250 ms; 1 s after an error). */
  polling?: Partial<PollingOptions>;
  /**
   * Wake subscribers with LISTEN/NOTIFY as soon as an append commits (default true). Each subscription then holds
   * one pool connection for its lifetime; polling alone is still correct, only slower.
   */
  listen?: boolean;
  /**
   * Whether the store offers `joinTransaction` (default true), so a caller can append in its own transaction (the
   * ledger's consumer, with its Kafka offsets). false = every appendMany commits on its own, as with EventStoreDB:
   * the ledger then takes its idempotent path (append, then store the offset), which CI tests this way.
   */
  transactional?: boolean;
  /**
   * Single appends notify at most this often (default 5 ms); the others are covered by one trailing NOTIFY sent
   * once the window ends. NOTIFY serialises commits cluster-wide, so this is what lets concurrent commands commit
   * in parallel; the cost is up to this much latency for a tailing subscriber.
   */
  notifyDebounceMs?: number;
}

interface EventRow {
  global_position: string;
  transaction_id: string;
  stream_id: string;
  version: number;
  event_id: string;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  recorded_at: Date;
}

/**
 * The selected columns. The numbers leave as text (JS numbers cannot hold them), so an ORDER BY must name the
 * table's columns qualified (`e.transaction_id`): an unqualified name means the text output column, which sorts
 * "10" before "9" and makes a page skip and repeat events whenever an id or position gains a digit.
 */
const EVENT_COLUMNS =
  'global_position::text, transaction_id::text, stream_id, version, event_id::text, type, data, metadata, recorded_at';
/**
 * EVENT_COLUMNS with `count` metadata keys (text[] parameter `param`) as columns m1…m<count> instead of the metadata,
 * each its value's JSON text: SQL NULL for a key the metadata lacks, 'null' for a key it holds as null.
 */
function eventColumnsWithMetadataKeys(count: number, param: number): string {
  const keys = Array.from({ length: count }, (_, i) => `(metadata->($${param}::text[])[${i + 1}])::text AS m${i + 1}`);
  return EVENT_COLUMNS.replace(', metadata,', `, ${keys.length === 0 ? "'{}'::jsonb AS metadata" : keys.join(', ')},`);
}

/**
 * The metadata of a row read with eventColumnsWithMetadataKeys: the keys it holds, a missing one left out, each
 * value `read` from its JSON text (parsed by readStreams, kept as text by subscribeToAllJson).
 */
function metadataOfKeys<T>(row: Record<string, unknown>, keys: readonly string[], read: (text: string) => T): Record<string, T> {
  const metadata: Record<string, T> = {};
  keys.forEach((key, i) => {
    const text = row[`m${i + 1}`];
    if (typeof text === 'string') metadata[key] = read(text);
  });
  return metadata;
}
/**
 * The tail's bound: readAll returns events of transactions below it only. Events can be written only by sessions of
 * this database, so the bound is the oldest transaction id still running in this database (pg_stat_activity's
 * `backend_xid`, and prepared transactions), or the snapshot's xmax when none runs: every transaction below
 * it has ended, or belongs to another database and writes no events. Before, it was pg_snapshot_xmin, the oldest
 * transaction of the whole cluster: a transaction left open in another database held every event back.
 *
 * Why no event can be skipped: this statement's snapshot (its `next`) is taken before it reads pg_stat_activity,
 * and the events are read by a later statement, with a later snapshot. A transaction below the bound got its id
 * before `next`; had it still been running when the events were read, it was running when pg_stat_activity was
 * read, so its id was there and the bound below it.
 *
 * `backend_xid` and `pg_prepared_xacts.transaction` are 32-bit ids; each is widened against `next` (an id still
 * running is less than 2^31 before it; one assigned since is after it and cannot lower the bound). Both are shown to
 * every role, whoever's session it is (not hidden like the query text without pg_read_all_stats).
 */
export const TAIL_BOUND_SQL = `
  WITH next AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::numeric AS id),
  running AS (
    SELECT backend_xid AS xid FROM pg_stat_activity WHERE datname = current_database() AND backend_xid IS NOT NULL
    UNION ALL
    SELECT transaction FROM pg_prepared_xacts WHERE database = current_database()
  )
  SELECT least(next.id, (SELECT min(${widenedXid('r.xid', 'next.id')}) FROM running r))::text AS bound FROM next`;

/** How old this database's tail bound may be before a read of events takes it again (see databaseTailBound). */
const TAIL_BOUND_REFRESH_MS = 100;

/** SQL: a 32-bit transaction id (`xid`) as the 64-bit id nearest `next` (numeric): next + ((xid − next) mod 2^32, as −2^31..2^31). */
export function widenedXid(xid: string, next: string): string {
  return `(${next} + ((${xid}::text::numeric - ${next} % 4294967296 + 6442450944) % 4294967296) - 2147483648)`;
}

const SAVEPOINT = 'tally_event_store_append';
/** Transactions an append without a unit of work takes at most when a later transaction wrote the stream first. */
const OWN_TRANSACTION_ATTEMPTS = 5;
/** How often single appends notify subscribers at most, by default (each NOTIFY serialises commits cluster-wide). */
const DEFAULT_NOTIFY_DEBOUNCE_MS = 5;

/**
 * The default event store: raw SQL on a pg Pool, in one schema (see postgres-schema.migration.ts for the tables).
 *
 * Tailing without gaps: global_position comes from a sequence at INSERT time but rows become visible at COMMIT,
 * so a transaction can commit after a later-numbered one. readAll therefore orders by
 * (transaction_id, global_position) and returns only rows of transactions older than the oldest transaction that
 * may still write events (TAIL_BOUND_SQL, or the cluster's oldest, pg_snapshot_xmin, when that is later): those can
 * no longer change, and every future transaction gets a larger id. The cost: the tail waits for the oldest open
 * transaction of this database (any session of it could write events), whatever it does; a transaction of the
 * cluster's other databases holds it for about TAIL_BOUND_REFRESH_MS (and the subscription's idle poll).
 */
export class PostgresEventStore implements EventStore {
  private readonly pool: Pool;
  private readonly schema: string;
  private readonly events: string;
  private readonly streams: string;
  private readonly polling: PollingOptions;
  private readonly listen: boolean;
  private readonly notifyDebounceMs: number;
  private readonly subscriptions = new SubscriptionRegistry();
  /** The transactions behind the units of work this store made (only this store can resolve its handles). */
  private readonly joined = new WeakMap<UnitOfWork, PoolClient>();
  readonly joinTransaction?: (tx: SqlTransaction) => UnitOfWork;
  /** When a single append last notified, and the trailing notification pending (see mayNotifyNow). */
  private lastNotifyAt = Number.NEGATIVE_INFINITY;
  private trailingNotify: NodeJS.Timeout | undefined;

  constructor(opts: PostgresEventStoreOptions) {
    this.schema = opts.schema ?? DEFAULT_EVENT_STORE_SCHEMA;
    assertSchemaName(this.schema);
    this.pool = opts.pool;
    this.events = `"${this.schema}".events`;
    this.streams = `"${this.schema}".streams`;
    this.polling = { ...DEFAULT_POLLING, ...opts.polling };
    this.listen = opts.listen ?? true;
    this.notifyDebounceMs = opts.notifyDebounceMs ?? DEFAULT_NOTIFY_DEBOUNCE_MS;
    if (opts.transactional ?? true) this.joinTransaction = (tx) => this.join(tx);
  }

  /** The caller's pg PoolClient, inside BEGIN: we neither begin nor commit it. */
  private join(tx: SqlTransaction): UnitOfWork {
    const unitOfWork = Object.freeze({}) as UnitOfWork;
    this.joined.set(unitOfWork, asPoolClient(tx));
    return unitOfWork;
  }

  private clientOf(unitOfWork: UnitOfWork): PoolClient {
    const client = this.joined.get(unitOfWork);
    if (!client) throw new EventStoreError(EventStoreErrorCode.INVALID_REQUEST, 'unit of work not made by this store (joinTransaction)');
    return client;
  }

  async append(req: AppendRequest): Promise<AppendResult> {
    const [result] = await this.appendMany([req]);
    return result;
  }

  /**
   * One transaction for all requests. With a unit of work (the caller's transaction, e.g. the ledger storing Kafka
   * offsets alongside) we neither begin nor commit; a savepoint (unless `options.savepoint` is false) still makes
   * this call all-or-nothing and leaves the caller's transaction usable after a WRONG_EXPECTED_VERSION.
   */
  async appendMany(reqs: AppendRequest[], unitOfWork?: UnitOfWork, options: AppendOptions = {}): Promise<AppendResult[]> {
    validateAppendRequests(reqs);
    if (reqs.length === 0) return [];
    if (unitOfWork !== undefined) {
      const client = this.clientOf(unitOfWork);
      if (options.savepoint === false) return this.appendInTransaction(client, reqs).catch((e: unknown) => Promise.reject(toEventStoreError(e)));
      await client.query(`SAVEPOINT ${SAVEPOINT}`);
      try {
        const results = await this.appendInTransaction(client, reqs);
        await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
        return results;
      } catch (e) {
        await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`).catch(() => undefined);
        throw toEventStoreError(e);
      }
    }
    const single = await this.appendOneStatement(reqs);
    if (single) return [single];
    // The store's own transaction: a stream last written by a later transaction (the two got their ids in one order
    // and the stream's lock in the other) is mended by what the error asks for, a new transaction, taken here.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.appendInOwnTransaction(reqs);
      } catch (e) {
        if (attempt >= OWN_TRANSACTION_ATTEMPTS || !isEventStoreError(e) || e.details.reason !== 'written-by-later-transaction') throw e;
      }
    }
  }

  private async appendInOwnTransaction(reqs: AppendRequest[]): Promise<AppendResult[]> {
    const client = await this.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const results = await this.appendInTransaction(client, reqs);
      await client.query('COMMIT');
      return results;
    } catch (e) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw toEventStoreError(e);
    } finally {
      client.release(broken);
    }
  }

  /**
   * The event at each head is a lookup on the events' primary key: a LATERAL subquery with a LIMIT, which PostgreSQL
   * runs per stream row whatever the table's statistics say (as a plain join, it could plan a scan of every event).
   */
  async streamHeads(streamIds: string[], unitOfWork?: UnitOfWork): Promise<Map<string, StreamHead>> {
    const heads = new Map<string, StreamHead>(streamIds.map((streamId) => [streamId, { version: 0 }]));
    if (streamIds.length === 0) return heads;
    const { rows } = await this.query<{ stream_id: string; version: number; event_id: string | null; recorded_at: Date | null }>(
      'stream-heads',
      `SELECT s.stream_id, s.version, h.event_id, h.recorded_at
         FROM ${streamsByKey(this.streams, '$1::text[]')}
         LEFT JOIN LATERAL (
           SELECT e.event_id::text, e.recorded_at FROM ${this.events} AS e WHERE e.stream_id = s.stream_id AND e.version = s.version LIMIT 1
         ) AS h ON true`,
      [streamIds],
      unitOfWork,
    );
    for (const row of rows) {
      heads.set(row.stream_id, row.event_id === null ? { version: row.version } : { version: row.version, eventId: row.event_id, recordedAt: row.recorded_at as Date });
    }
    return heads;
  }

  async readStream(streamId: string, opts: { fromVersion?: number; toVersion?: number; unitOfWork?: UnitOfWork } = {}): Promise<RecordedEvent[]> {
    const { rows } = await this.query<EventRow>(
      'read-stream',
      `SELECT ${EVENT_COLUMNS} FROM ${this.events}
        WHERE stream_id = $1 AND version >= $2 AND version <= $3
        ORDER BY version`,
      [streamId, opts.fromVersion ?? 1, opts.toVersion ?? 2_147_483_647],
      opts.unitOfWork,
    );
    return rows.map(toRecordedEvent);
  }

  /**
   * One query for all the streams, each read off the primary key from its starting version. LATERAL with an ORDER BY
   * keeps it a lookup per stream whatever the table's statistics say: as a plain join, a table not analyzed yet (a
   * burst of new accounts) got a hash join over a parallel scan of every event. With `metadataKeys`, each key is a
   * column of its own (`metadata->key`): a cold account's metadata carries its balance after each event, which
   * PostgreSQL would print and pg parse for nothing (docs/benchmarks.md session 24).
   */
  async readStreams(requests: readonly StreamRead[], options: ReadStreamsOptions = {}): Promise<Map<string, RecordedEvent[]>> {
    const from = parseStreamReads(requests);
    const read = new Map<string, RecordedEvent[]>([...from.keys()].map((streamId) => [streamId, []]));
    if (from.size === 0) return read;
    const keys = options.metadataKeys;
    const columns = keys === undefined ? EVENT_COLUMNS : eventColumnsWithMetadataKeys(keys.length, 3);
    const { rows } = await this.query<EventRow & Record<string, unknown>>(
      keys === undefined ? 'read-streams' : `read-streams-keys-${keys.length}`,
      `SELECT e.* FROM unnest($1::text[], $2::int[]) AS r(stream, from_version)
         CROSS JOIN LATERAL (
           SELECT ${columns} FROM ${this.events} WHERE stream_id = r.stream AND version >= r.from_version ORDER BY version
         ) AS e`,
      keys === undefined || keys.length === 0 ? [[...from.keys()], [...from.values()]] : [[...from.keys()], [...from.values()], keys],
      options.unitOfWork,
    );
    for (const row of rows) {
      if (keys !== undefined) row.metadata = metadataOfKeys(row, keys, (text): unknown => JSON.parse(text));
      read.get(row.stream_id)?.push(toRecordedEvent(row));
    }
    return read;
  }

  readonly readEvents = async (ids: readonly string[], unitOfWork?: UnitOfWork): Promise<RecordedEvent[]> => {
    const unique = parseEventIds(ids);
    if (unique.length === 0) return [];
    const { rows } = await this.query<EventRow>('read-events', `SELECT ${EVENT_COLUMNS} FROM ${this.events} WHERE event_id = ANY($1::uuid[])`, [unique], unitOfWork);
    return rows.map(toRecordedEvent);
  };

  /**
   * With this database's tail bound read afresh for the call: whatever any reader (another store, another process: the
   * relay) returned before it started, it returns too, since the bound only moves forward (the read-model rebuild's
   * locked catch-up relies on it). A subscription's pages may reuse a bound up to TAIL_BOUND_REFRESH_MS old.
   */
  async readAll(opts: { after: Checkpoint; limit: number }): Promise<RecordedEvent[]> {
    const rows = await this.readAllRows<EventRow>('read-all', EVENT_COLUMNS, opts.after, opts.limit, [], { fresh: true });
    return rows.map(toRecordedEvent);
  }

  subscribeToAll(opts: SubscribeToAllOptions): Subscription {
    return this.tail(async (after, limit) => (await this.readAllRows<EventRow>('read-all', EVENT_COLUMNS, after, limit)).map(toRecordedEvent), opts);
  }

  /**
   * The data as `data::text` and each asked metadata key as a column (eventColumnsWithMetadataKeys): PostgreSQL
   * prints jsonb either way, and the reader (the relay) forwards the texts instead of parsing and printing them again.
   */
  subscribeToAllJson(opts: SubscribeToAllJsonOptions): Subscription {
    const keys = [...opts.metadataKeys];
    const columns = eventColumnsWithMetadataKeys(keys.length, 4).replace(', data,', ', data::text AS data,');
    const read = async (after: Checkpoint, limit: number): Promise<RecordedEventJson[]> => {
      const rows = await this.readAllRows<EventJsonRow>(`read-all-json-${keys.length}`, columns, after, limit, keys.length > 0 ? [keys] : []);
      return rows.map((row) => toRecordedEventJson(row, keys));
    };
    return this.tail(read, opts);
  }

  /** Events strictly after `after` in commit order, never past the oldest transaction still open (see the class). */
  private async readAllRows<R extends object>(name: string, columns: string, after: Checkpoint, limit: number, extra: unknown[] = [], { fresh = false } = {}): Promise<R[]> {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new EventStoreError(EventStoreErrorCode.INVALID_REQUEST, 'limit must be a positive integer', { limit });
    }
    const from = decodePgCheckpoint(after);
    const bound = await this.databaseTailBound(fresh);
    // Below the cluster's oldest running transaction (taken with this statement's snapshot) or below this database's
    // (taken before it): each alone leaves no event behind, so the later of the two does not either.
    const { rows } = await this.query<R>(
      name,
      `SELECT ${columns} FROM ${this.events} AS e
        WHERE (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)
          AND e.transaction_id < greatest(pg_snapshot_xmin(pg_current_snapshot()), $${4 + extra.length}::xid8)
        ORDER BY e.transaction_id, e.global_position
        LIMIT $3`,
      [from.transactionId.toString(), from.globalPosition.toString(), limit, ...extra, bound],
    );
    return rows;
  }

  /** The last TAIL_BOUND_SQL read, and when it was read (performance.now()). */
  private tailBound = '0';
  private tailBoundAt = Number.NEGATIVE_INFINITY;

  /**
   * This database's tail bound (TAIL_BOUND_SQL), read in its own statement before the events are, at most every
   * TAIL_BOUND_REFRESH_MS: a bound read before a read of events is safe for it however old (only more cautious), and
   * while no transaction runs long anywhere the cluster's own bound, fresh with every read, is as far. So the extra
   * round trip is paid a few times a second, not per page, and a transaction open in another database delays the
   * tail by at most that interval.
   */
  private async databaseTailBound(fresh: boolean): Promise<string> {
    const now = performance.now();
    if (!fresh && now - this.tailBoundAt < TAIL_BOUND_REFRESH_MS) return this.tailBound;
    const { rows: [{ bound }] } = await this.query<{ bound: string }>('tail-bound', TAIL_BOUND_SQL, []);
    this.tailBound = bound;
    this.tailBoundAt = now;
    return bound;
  }

  private tail<E extends Pick<RecordedEvent, 'checkpoint'>>(read: (after: Checkpoint, limit: number) => Promise<E[]>, opts: SubscribeToAllOptions<E>): Subscription {
    decodePgCheckpoint(opts.after); // fail now, not inside the loop
    const wakeUp = this.listen ? new ListenWakeUp(this.pool, notifyChannel(this.schema)) : undefined;
    return this.subscriptions.track(new PollingSubscription<E>(read, opts, this.polling, wakeUp));
  }

  async close(): Promise<void> {
    clearTimeout(this.trailingNotify);
    this.trailingNotify = undefined;
    await this.subscriptions.stopAll();
  }

  /**
   * Set-based, whatever the number of streams: two statements per call, not four per stream.
   * 1. Lock the streams and read what is needed to decide, in one statement:
   *    - streams the call writes are upserted in one global order (a missing one is created at version 0 and
   *      locked by us; one another transaction is creating makes us wait for it), which also locks existing
   *      rows in that order, so two concurrent calls cannot deadlock;
   *    - streams only version-checked (empty requests) are locked without being created;
   *    - the call's event ids already stored anywhere (the retry-after-crash case, see duplicateOf);
   *    - whether a stream was last moved by a transaction younger than this one (`last_xid`): appending after it
   *      would put this version before the previous one in readAll's order (transaction id first), so the call is
   *      refused as a WRONG_EXPECTED_VERSION and the caller retries in a new transaction (a consumer's transaction
   *      takes its id at its offset lock, before it reads the stream).
   * 2. Move the stream versions (and `last_xid`), insert all events (ordered, so global positions follow the call) and notify
   *    tailing subscribers (delivered at COMMIT, and only if it commits).
   * Several requests for one stream apply in call order, each on the version the previous one left.
   */
  private async appendInTransaction(client: PoolClient, reqs: AppendRequest[]): Promise<AppendResult[]> {
    const writing = sortedUnique(reqs.filter((req) => req.events.length > 0).map((req) => req.streamId));
    const written = new Set(writing);
    const checking = sortedUnique(reqs.filter((req) => req.events.length === 0 && !written.has(req.streamId)).map((req) => req.streamId));
    const ids = reqs.flatMap((req) => req.events.map((event) => event.id.toLowerCase()));
    const { rows } = await client.query<{ stream_id: string; version: number; event_id: string | null; newer: boolean }>({
      name: this.statementName('lock-streams'),
      text: `WITH written AS (
         INSERT INTO ${this.streams} AS s (stream_id, version)
         SELECT u.stream_id, 0 FROM unnest($1::text[]) WITH ORDINALITY AS u(stream_id, ord) ORDER BY u.ord
         ON CONFLICT (stream_id) DO UPDATE SET version = s.version
         RETURNING s.stream_id, s.version, s.last_xid > pg_current_xact_id() AS newer
       ), checked AS (
         SELECT s.stream_id, s.version FROM ${streamsByKey(this.streams, '$2::text[]', 'FOR UPDATE')}
       )
       SELECT stream_id, version, NULL AS event_id, newer FROM written
       UNION ALL SELECT stream_id, version, NULL, false FROM checked
       UNION ALL SELECT stream_id, version, event_id::text, false FROM ${this.events} WHERE event_id = ANY($3::uuid[])`,
      values: [writing, checking, ids],
    });
    const versions = new Map<string, number>();
    const stored = new Map<string, StoredPlace>();
    let newer: Set<string> | undefined;
    for (const row of rows) {
      if (row.event_id === null) versions.set(row.stream_id, row.version);
      else stored.set(row.event_id, row);
      if (row.newer) (newer ??= new Set()).add(row.stream_id);
    }

    const results: AppendResult[] = [];
    const events: { streamId: string; version: number; event: NewEvent }[] = [];
    for (const req of reqs) {
      const duplicate = duplicateOf(req, stored);
      if (duplicate) {
        results.push(duplicate);
        continue;
      }
      const current = versions.get(req.streamId) ?? 0;
      if (!matches(req.expectedVersion, current)) {
        throw EventStoreError.wrongExpectedVersion({ streamId: req.streamId, expected: req.expectedVersion, actual: current });
      }
      if (newer?.has(req.streamId)) throw EventStoreError.writtenByLaterTransaction({ streamId: req.streamId, expected: req.expectedVersion, actual: current });
      req.events.forEach((event, i) => events.push({ streamId: req.streamId, version: current + i + 1, event }));
      versions.set(req.streamId, current + req.events.length);
      results.push({ streamId: req.streamId, nextExpectedVersion: current + req.events.length, duplicate: false });
    }
    if (events.length === 0) return results;

    const moved = sortedUnique(events.map((row) => row.streamId));
    // now(): the transaction's start, what every event it inserts records (recorded_at's default).
    const { rows: [{ recorded_at: recordedAt }] } = await client.query<{ recorded_at: Date }>({
      name: this.statementName('move-and-insert'),
      text: `WITH moved AS (
         UPDATE ${this.streams} AS s SET version = u.version, last_xid = pg_current_xact_id()
           FROM unnest($1::text[], $2::int[]) AS u(stream_id, version) WHERE s.stream_id = u.stream_id
       ), inserted AS (${this.insertEventsSql(3)})
       SELECT pg_notify($4, ''), now() AS recorded_at`,
      values: [moved, moved.map((streamId) => versions.get(streamId)), eventRowsJson(events), notifyChannel(this.schema)],
    });
    const inserted = new Set(moved);
    return results.map((result) => (!result.duplicate && inserted.has(result.streamId) ? { ...result, recordedAt } : result));
  }

  /**
   * Inserts the events of `eventRowsJson` (parameter `$param`), in their order, where `where` holds. Each event is an
   * array in the column order below: no keys for PostgreSQL to look up (2–3 µs less of its CPU per event than objects,
   * docs/benchmarks.md session 24).
   */
  private insertEventsSql(param: number, where = ''): string {
    return `INSERT INTO ${this.events} (stream_id, version, event_id, type, data, metadata)
      SELECT e.ev->>0, (e.ev->>1)::int, (e.ev->>2)::uuid, e.ev->>3, e.ev->4, e.ev->5
        FROM jsonb_array_elements($${param}::jsonb) WITH ORDINALITY AS e(ev, ord)
       ${where}
       ORDER BY e.ord`;
  }

  /**
   * The common single append (one request, a numeric expected version, events to write; an HTTP command's append)
   * in one autocommit statement, one round trip: move the stream row only if it is at the expected version (a
   * compare-and-set that also locks it), insert the events only if it moved, notify. Answers undefined when it did
   * not apply: the stream was elsewhere, or an event id is already stored (a retry after a crash, or a reuse). The
   * transactional path then decides, with the id lookup this path skips, exactly as before.
   * It needs no `last_xid` check (appendInTransaction), only to set it: its expected version was read before the
   * statement began, so a transaction that moved the stream since (the only kind that could be younger) fails the
   * compare-and-set.
   */
  private async appendOneStatement(reqs: AppendRequest[]): Promise<AppendResult | undefined> {
    if (reqs.length !== 1) return undefined;
    const [{ streamId, expectedVersion, events }] = reqs;
    if (typeof expectedVersion !== 'number' || events.length === 0) return undefined;
    const next = expectedVersion + events.length;
    // A missing stream is at version 0: expecting 0 creates it (or moves a row left at 0); expecting more needs the row.
    const notifyNow = this.mayNotifyNow();
    const move = expectedVersion === 0
      ? `INSERT INTO ${this.streams} AS s (stream_id, version, last_xid) VALUES ($1, $3, pg_current_xact_id())
         ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, last_xid = EXCLUDED.last_xid WHERE s.version = $2
         RETURNING s.version`
      : `UPDATE ${this.streams} SET version = $3, last_xid = pg_current_xact_id() WHERE stream_id = $1 AND version = $2 RETURNING version`;
    try {
      const { rows: [result] } = await this.pool.query<{ moved: number; recorded_at: Date }>({
        name: this.statementName(expectedVersion === 0 ? 'append-one-new' : 'append-one'),
        text: `WITH moved AS (${move}), inserted AS (${this.insertEventsSql(4, 'WHERE EXISTS (SELECT 1 FROM moved)')})
         SELECT (SELECT count(*) FROM moved)::int AS moved, (SELECT pg_notify($5, '') FROM moved WHERE $5::text IS NOT NULL) AS notified, now() AS recorded_at`,
        values: [streamId, expectedVersion, next, eventRowsJson(events.map((event, i) => ({ streamId, version: expectedVersion + i + 1, event }))), notifyNow ? notifyChannel(this.schema) : null],
      });
      if (result.moved !== 1) return undefined;
      if (!notifyNow) this.notifySoon();
      return { streamId, nextExpectedVersion: next, duplicate: false, recordedAt: result.recorded_at };
    } catch (e) {
      // An event id already stored: the statement wrote nothing; the transactional path finds the id and answers.
      if ((e as { code?: string }).code === '23505') return undefined;
      throw toEventStoreError(e);
    }
  }

  /**
   * NOTIFY takes a cluster-wide lock at COMMIT, so notifying every single append serialises concurrent commands'
   * commits. At most one append per notifyDebounceMs notifies in its own statement; the others leave it to one
   * trailing NOTIFY sent after they committed, so a tailing subscriber still wakes within the window.
   */
  private mayNotifyNow(): boolean {
    const now = performance.now();
    if (now - this.lastNotifyAt < this.notifyDebounceMs) return false;
    this.lastNotifyAt = now;
    return true;
  }

  private notifySoon(): void {
    if (this.trailingNotify) return;
    this.trailingNotify = setTimeout(() => {
      this.trailingNotify = undefined;
      this.lastNotifyAt = performance.now();
      // A lost wake-up costs latency only: subscribers also poll.
      this.pool.query('SELECT pg_notify($1, \'\')', [notifyChannel(this.schema)]).catch(() => undefined);
    }, this.notifyDebounceMs);
    this.trailingNotify.unref();
  }

  /**
   * Statements the store runs over and over are named, one name per schema and statement: PostgreSQL parses and
   * plans each once per connection instead of at every call (the text must never differ under one name).
   */
  private statementName(statement: string): string {
    return `tally-${statement}:${this.schema}`;
  }

  /** A named statement on the pool, or in the unit of work's transaction when one is given. */
  private async query<R extends object>(statement: string, text: string, values: unknown[], unitOfWork?: UnitOfWork): Promise<{ rows: R[] }> {
    const client = unitOfWork === undefined ? this.pool : this.clientOf(unitOfWork);
    try {
      return await client.query<R & Record<string, unknown>>({ name: this.statementName(statement), text, values });
    } catch (e) {
      throw toEventStoreError(e);
    }
  }

  private async connect(): Promise<PoolClient> {
    try {
      return await this.pool.connect();
    } catch (e) {
      throw toEventStoreError(e);
    }
  }
}

/** After the LISTEN connection is lost (e.g. a PostgreSQL restart), listen again this often until it works. */
const RELISTEN_DELAY_MS = 1_000;

/**
 * Wakes a subscription on NOTIFY; holds one pool connection while the subscription runs. A lost connection is
 * reported and replaced (polling carries on meanwhile), so a PostgreSQL restart does not leave the tail on
 * polling alone for the rest of the process's life.
 */
class ListenWakeUp implements WakeUpSource {
  private client: PoolClient | undefined;
  private detach: (() => void) | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly channel: string,
  ) {}

  async start(wake: () => void, onError: (e: Error) => void): Promise<void> {
    this.stopped = false;
    try {
      await this.listen(wake, onError);
    } catch (e) {
      this.listenLater(wake, onError);
      throw e;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const client = this.client;
    if (!client) return;
    try {
      await client.query(`UNLISTEN "${this.channel}"`);
      this.drop();
    } catch (e) {
      this.drop(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private async listen(wake: () => void, onError: (e: Error) => void): Promise<void> {
    const client = await this.pool.connect();
    const onNotification = (n: { channel: string }): void => {
      if (n.channel === this.channel) wake();
    };
    const onClientError = (e: Error): void => {
      // The connection is gone: hand it back broken, carry on polling, and listen again on a new one.
      onError(e);
      this.drop(e);
      this.listenLater(wake, onError);
    };
    client.on('notification', onNotification);
    client.on('error', onClientError);
    this.client = client;
    // Pooled clients are reused: our listeners must not outlive our use of this one.
    this.detach = () => {
      client.removeListener('notification', onNotification);
      client.removeListener('error', onClientError);
    };
    try {
      await client.query(`LISTEN "${this.channel}"`);
    } catch (e) {
      this.drop(e instanceof Error ? e : new Error(String(e)));
      throw e;
    }
    if (this.stopped) await this.stop();
  }

  private listenLater(wake: () => void, onError: (e: Error) => void): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.stopped || this.client) return;
      this.listen(wake, onError).then(
        // Whatever was appended while we were not listening is read now rather than at the next poll.
        () => wake(),
        (e: unknown) => {
          onError(e instanceof Error ? e : new Error(String(e)));
          this.listenLater(wake, onError);
        },
      );
    }, RELISTEN_DELAY_MS);
    this.retryTimer.unref();
  }

  private drop(broken?: Error): void {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    this.detach?.();
    this.detach = undefined;
    client.release(broken);
  }
}

interface StoredPlace {
  stream_id: string;
  version: number;
}

/**
 * A FROM item `s` with the row of the streams table for each stream id of the array parameter `keys` (an id without a
 * row gives none, an id given twice its row twice), each row `lock`ed in the order the array lists them: one index
 * probe per id, whatever the table's size. `stream_id = ANY(keys)` was planned as a sequential scan of the whole
 * table for a batch of ~900 accounts once it held ~200,000 streams, with or without statistics (30–90 ms a batch,
 * growing with the accounts), for the first executions of each connection's prepared statement, until PostgreSQL
 * settles on its generic plan (docs/benchmarks.md, session 35). The LIMIT keeps the subquery from being pulled up into
 * a join the planner could turn into a scan again.
 */
function streamsByKey(streams: string, keys: string, lock = ''): string {
  return `unnest(${keys}) AS k(key) CROSS JOIN LATERAL (SELECT * FROM ${streams} WHERE stream_id = k.key LIMIT 1 ${lock}) AS s`;
}

/**
 * The retry-after-crash case: if every id of the request is already stored in its stream, consecutively and
 * where this request would have put them, the first attempt committed — report a duplicate and write nothing,
 * whatever the stream's version is now. Any partial or misplaced match is a conflict: the caller reused an id.
 */
function duplicateOf(req: AppendRequest, stored: Map<string, StoredPlace>): AppendResult | undefined {
  if (req.events.length === 0 || stored.size === 0) return undefined;
  const ids = req.events.map((event) => event.id.toLowerCase());
  const places = ids.map((id) => stored.get(id));
  if (places.every((place) => place === undefined)) return undefined;
  const firstVersion = places[0]?.version ?? 0;
  // Every id found, in this stream, one after the other.
  const consecutive = places.every((place, i) => place?.stream_id === req.streamId && place.version === firstVersion + i);
  const expectedFirst =
    req.expectedVersion === 'any' ? firstVersion : req.expectedVersion === 'no_stream' ? 1 : req.expectedVersion + 1;
  if (consecutive && firstVersion === expectedFirst) {
    return { streamId: req.streamId, nextExpectedVersion: firstVersion + ids.length - 1, duplicate: true };
  }
  throw new EventStoreError(
    EventStoreErrorCode.IDEMPOTENCY_CONFLICT,
    `stream ${req.streamId}: event ids already stored elsewhere or at other positions`,
    { streamId: req.streamId, stored: ids.flatMap((id, i) => (places[i] ? [{ id, streamId: places[i].stream_id, version: places[i].version }] : [])) },
  );
}

/** Events at their stream positions, as the JSON array `insertEventsSql` reads (one array per event), as a jsonb parameter. */
function eventRowsJson(rows: { streamId: string; version: number; event: NewEvent }[]): Buffer {
  return jsonbParameter(rows.map(({ streamId, version, event }) => [streamId, version, event.id, event.type, event.data, event.metadata ?? {}]));
}

/** Distinct, in code-unit order (= PostgreSQL's COLLATE "C" for the ASCII ids we use): one lock order for all. */
function sortedUnique(values: string[]): string[] {
  return [...new Set(values)].sort(compare);
}

function matches(expected: ExpectedVersion, current: number): boolean {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return current === 0;
  return expected === current;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function asPoolClient(tx: SqlTransaction): PoolClient {
  if (typeof tx === 'object' && tx !== null && typeof tx.query === 'function') return tx as PoolClient;
  throw new EventStoreError(EventStoreErrorCode.INVALID_REQUEST, 'joinTransaction needs a pg PoolClient inside a transaction');
}

function toRecordedEvent(row: EventRow): RecordedEvent {
  return {
    id: row.event_id,
    streamId: row.stream_id,
    version: row.version,
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    recordedAt: row.recorded_at,
    checkpoint: checkpointOf(row),
  };
}

/** A row read with the data as text and the metadata keys as columns m1…mN (subscribeToAllJson). */
type EventJsonRow = Omit<EventRow, 'data' | 'metadata'> & { data: string } & Record<`m${number}`, string | null>;

function toRecordedEventJson(row: EventJsonRow, keys: readonly string[]): RecordedEventJson {
  return {
    id: row.event_id,
    streamId: row.stream_id,
    version: row.version,
    type: row.type,
    dataJson: row.data,
    metadataJson: metadataOfKeys(row, keys, (text) => text),
    recordedAt: row.recorded_at,
    checkpoint: checkpointOf(row),
  };
}

function checkpointOf(row: Pick<EventRow, 'transaction_id' | 'global_position'>): Checkpoint {
  return encodePgCheckpoint({ transactionId: BigInt(row.transaction_id), globalPosition: BigInt(row.global_position) });
}

/** Maps driver errors onto the port's codes; anything unexpected passes through unchanged. */
export function toEventStoreError(e: unknown): unknown {
  // Duck-typed: socket errors may come from another realm (e.g. under Jest), failing `instanceof Error`.
  if (e instanceof EventStoreError || typeof e !== 'object' || e === null || !('message' in e)) return e;
  const { code, constraint, message } = e as Error & { code?: string; constraint?: string };
  if (code === '23505' && constraint === 'events_event_id_key') {
    // Two writers appended the same event id at the same time (the stream row lock does not cover a brand new
    // stream or another stream). Retrying resolves it: the retry sees a duplicate or a real conflict.
    return new EventStoreError(
      EventStoreErrorCode.WRONG_EXPECTED_VERSION,
      'concurrent append of the same event id',
      { actual: null, detail: (e as { detail?: string }).detail },
      { cause: e },
    );
  }
  if (isPgConnectionError(e)) {
    return new EventStoreError(EventStoreErrorCode.UNAVAILABLE, `PostgreSQL unavailable: ${String(message)}`, {}, { cause: e });
  }
  return e;
}

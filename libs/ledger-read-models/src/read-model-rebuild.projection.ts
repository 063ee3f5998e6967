import type { Envelope } from '@tally/contracts';
import type { Checkpoint, RecordedEvent } from '@tally/event-store';
import { toLedgerEnvelope } from '@tally/ledger-events';
import { quoteIdentifier } from '@tally/shared';
import type { Pool, PoolClient } from 'pg';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { asLedgerEnvelope } from './ledger-event-rows.codec';
import { LedgerProjection, READ_MODEL_TABLES, notifyBalancesChanged } from './ledger.projection';
import { READ_MODEL_MIGRATIONS } from './migrations';

/** Where a rebuild reads the ledger's events from: the event store in commit order (never Kafka). */
export interface EnvelopeSource {
  /** Up to `limit` events strictly after `after`, as ledger.events.v1 envelopes, and the checkpoint of the last. */
  read(after: Checkpoint, limit: number): Promise<{ envelopes: Envelope<object>[]; next: Checkpoint }>;
}

/** The event store (its `readAll`, which never skips a late commit) as the relay publishes it. */
export function eventStoreSource(store: { readAll(opts: { after: Checkpoint; limit: number }): Promise<RecordedEvent[]> }): EnvelopeSource {
  return {
    async read(after, limit) {
      const events = await store.readAll({ after, limit });
      return { envelopes: events.map(toLedgerEnvelope), next: events.length > 0 ? events[events.length - 1].checkpoint : after };
    },
  };
}

export interface RebuildProgress {
  phase: 'fold' | 'catch-up' | 'swap';
  /** Events folded into the shadow tables so far. */
  events: number;
  /** Events the projection cannot use (it dead-letters them from Kafka): skipped, as the live projection does. */
  skipped: number;
}

export interface FoldOptions {
  pool: Pool;
  /** The schema of the live read models (the ledger's DATABASE_SCHEMA). */
  schema: string;
  source: EnvelopeSource;
  /** Events per read and per transaction into the shadow tables. */
  batchSize?: number;
  onProgress?: (progress: RebuildProgress) => void;
}

export interface RebuildResult {
  events: number;
  skipped: number;
  /** Events folded while the live tables were locked for the swap (what the live projection could have applied since the snapshot). */
  caughtUpAtSwap: number;
  /** Accounts whose balance the swap moved forward (notified on the live balance channel). */
  movedForward: number;
  /** How long the live tables were locked against the live projection's writes (reads wait only for the renames). */
  lockedMs: number;
  /** Why the retired tables are still there after a swap that asked to drop them (the next rebuild drops them first). */
  retiredKept?: string;
  /** With keepRetired: the schema the replaced tables were kept in (`<schema>_retired_<UTC yyyymmddhhmmssmmm>`), which no rebuild drops. */
  retiredSchema?: string;
}

const DEFAULT_BATCH = 2_000;
/** A swap that waits longer than this for its lock gives up and tries again (readers queue behind a waiting lock). */
const SWAP_LOCK_TIMEOUT = '3s';
const SWAP_ATTEMPTS = 10;
/** Catch-up passes before the swap's lock at most (each folds what arrived during the one before). */
const UNLOCKED_PASSES = 5;

/**
 * Rebuilds the read models of `schema` from the event store without taking them away from readers:
 *
 * 1. A shadow schema `<schema>_rebuild` gets empty tables from the read models' own migrations, and every event of
 *    the store is folded into it in commit order by the live projection's own code (LedgerProjection), in
 *    batches, while the live tables keep serving reads and the live projection keeps writing them.
 * 2. The swap, in one transaction: lock the live tables against writes (EXCLUSIVE: readers go on), read what the
 *    store committed since the fold's last checkpoint, fold it into the shadow, notify the accounts the shadow is
 *    ahead on, then move the live tables out to `<schema>_retired` and the shadow tables in (renames take
 *    ACCESS EXCLUSIVE for a moment: readers wait, never see a missing table or a missing row), commit.
 *
 * Why nothing is lost or applied twice: everything the live projection applied came from the relay, which
 * publishes only events the store has committed and its `readAll` returns; the catch-up runs after the lock
 * stopped the live projection, so the shadow holds every event it had applied (and maybe some it had not yet).
 * The projection is idempotent by (account, stream version): whatever it applies after the swap that the shadow
 * already holds is ignored (rows insert-or-ignore, balances only move forward). Its Kafka offsets are untouched.
 */
export interface RebuildOptions extends FoldOptions {
  keepRetired?: boolean;
  /**
   * Swap in a fold that lacks accounts the live tables have, or holds them at an older stream version (see
   * FoldBehindLiveError); for live tables known to hold rows of no event of this store.
   */
  allowBehindLive?: boolean;
}

/**
 * The fold is behind the live read models: accounts the live tables have are missing from it or at an older stream
 * version. Events are never deleted and the fold reads every one, so a complete fold of the ledger's store is never
 * behind: the source is another store (EVENT_STORE, DATABASE_SCHEMA), an emptied one, or a restored older copy.
 * Swapping it in would take those balances and histories away: refused, nothing changed.
 */
export class FoldBehindLiveError extends Error {
  constructor(
    readonly accounts: number,
    readonly examples: string[],
  ) {
    super(
      `refused: the fold of the event store is behind the live read models on ${accounts} account(s) (${examples.join(', ')}${accounts > examples.length ? ', …' : ''}): ` +
        'missing from it or at an older stream version. Is this the ledger\'s event store (EVENT_STORE, DATABASE_SCHEMA)? Nothing was changed. ' +
        'After the database went back in time (a failover that lost commits, a restore) the live read models keep rows of the lost events: ' +
        'then rebuild with --allow-behind-live (deploy/README.md)',
    );
    this.name = 'FoldBehindLiveError';
  }
}

export async function rebuildReadModels(options: RebuildOptions): Promise<RebuildResult> {
  const { pool, schema } = options;
  return withRebuildLock(pool, schema, async () => {
    const shadow = await foldIntoNewSchema(options, `${schema}_rebuild`);
    const swap = await retryOnLockConflict(() => swapIn(options, shadow.schema, shadow.next, shadow.events, shadow.skipped));
    // The swap has committed: only the retired tables' drop may be retried now. Retrying the swap itself would fold into
    // a shadow schema that no longer exists ("relation …_rebuild.ledger_transactions does not exist"). A drop that
    // still fails leaves the retired tables to the next rebuild's swap, which drops them first.
    if (options.keepRetired) return swap;
    return retryOnLockConflict(() => pool.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(`${schema}_retired`)} CASCADE`)).then(
      () => swap,
      (error: Error) => ({ ...swap, retiredKept: `dropping ${schema}_retired failed: ${error.message}` }),
    );
  });
}

/**
 * `<schema>_retired_<UTC yyyymmddhhmmssmmm>`, the schema's part shortened, whole characters, to PostgreSQL's 63-byte
 * identifiers (it would cut a longer name silently, and the name printed would not be the schema's).
 */
function keptSchemaName(schema: string, at: Date): string {
  const suffix = `_retired_${at.toISOString().replace(/\D/g, '').slice(0, 17)}`;
  let head = schema;
  while (Buffer.byteLength(head + suffix) > 63) head = [...head].slice(0, -1).join('');
  return `${head}${suffix}`;
}

/** Another writer's statement held one table while waiting for another we hold (deadlock, lock timeout): try again. */
async function retryOnLockConflict<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (attempt >= SWAP_ATTEMPTS || (code !== '40P01' && code !== '55P03')) throw error;
    }
  }
}

/** A fresh schema with empty read-model tables, and every event of the source folded into it. */
export async function foldIntoNewSchema(options: FoldOptions, target: string): Promise<{ schema: string; next: Checkpoint; events: number; skipped: number }> {
  const { pool, onProgress } = options;
  const t = quoteIdentifier(target, 'shadow schema name');
  await pool.query(`DROP SCHEMA IF EXISTS ${t} CASCADE`);
  await pool.query(`CREATE SCHEMA ${t}`);
  await createReadModelTables(pool, target);
  await assertSameTables(pool, options.schema, target).catch(async (error: unknown) => {
    await pool.query(`DROP SCHEMA IF EXISTS ${t} CASCADE`);
    throw error;
  });
  const counts = { events: 0, skipped: 0 };
  const { next } = await catchUpByPage(pool, options, target, '', counts, () => onProgress?.({ phase: 'fold', ...counts }));
  return { schema: target, next, ...counts };
}

/**
 * Folds what the source has after `after` into `schema`'s tables in the caller's transaction. The store's `readAll`
 * returns only transactions older than every one still running (so it never skips a late commit); that horizon only
 * moves forward, so a later read sees at least every event an earlier read (the relay's) returned.
 */
export function catchUp(tx: PoolClient, options: FoldOptions, schema: string, after: Checkpoint, counts: { events: number; skipped: number }): Promise<{ next: Checkpoint; events: number }> {
  return foldPages(options, schema, after, counts, (apply) => apply(tx));
}

/**
 * Folds what the source has after `after` into `schema`'s tables a page per transaction. The relay publishes only
 * events older than every open transaction of the database (its gap-safe tail): one transaction over every page of
 * what arrived during an hours-long fold froze ledger.events.v1 while it ran. Only the pass under the swap's lock
 * needs one transaction (catchUp).
 */
export function catchUpByPage(
  pool: Pool,
  options: FoldOptions,
  schema: string,
  after: Checkpoint,
  counts: { events: number; skipped: number },
  afterPage?: () => void,
): Promise<{ next: Checkpoint; events: number }> {
  return foldPages(options, schema, after, counts, (apply) => inTransaction(pool, apply), afterPage);
}

/** Reads the source page by page from `after` and applies each page in the transaction `inTx` gives it. */
async function foldPages(
  options: FoldOptions,
  schema: string,
  after: Checkpoint,
  counts: { events: number; skipped: number },
  inTx: (apply: (tx: PoolClient) => Promise<void>) => Promise<void>,
  afterPage?: () => void,
): Promise<{ next: Checkpoint; events: number }> {
  const { source, batchSize = DEFAULT_BATCH } = options;
  const projection = new LedgerProjection(schema, { notify: false });
  const before = counts.events + counts.skipped;
  let next = after;
  for (;;) {
    const batch = await source.read(next, batchSize);
    if (batch.envelopes.length === 0) break;
    await inTx((tx) => applyUsable(projection, tx, batch.envelopes, counts));
    next = batch.next;
    afterPage?.();
  }
  return { next, events: counts.events + counts.skipped - before };
}

async function swapIn(options: RebuildOptions, shadow: string, after: Checkpoint, events: number, skipped: number): Promise<RebuildResult> {
  const { pool, schema, onProgress } = options;
  const live = quoteIdentifier(schema);
  const s = quoteIdentifier(shadow);
  const retired = quoteIdentifier(`${schema}_retired`);
  const counts = { events, skipped };
  // What arrived during the fold is folded before taking any lock, pass after pass while the passes shrink, so the
  // locked catch-up (during which the live projection waits) is short.
  let unlocked = { next: after, events: Number.POSITIVE_INFINITY };
  for (let pass = 0; pass < UNLOCKED_PASSES && unlocked.events > (options.batchSize ?? DEFAULT_BATCH) / 10; pass++) {
    const from = unlocked.next;
    unlocked = await catchUpByPage(pool, options, shadow, from, counts);
    onProgress?.({ phase: 'catch-up', ...counts });
  }
  return inTransaction(pool, async (tx) => {
    await tx.query(`SET LOCAL lock_timeout = '${SWAP_LOCK_TIMEOUT}'`);
    await tx.query(`LOCK TABLE ${READ_MODEL_TABLES.map((table) => `${live}.${table}`).join(', ')} IN EXCLUSIVE MODE`);
    const lockedAt = Date.now();
    const locked = await catchUp(tx, options, shadow, unlocked.next, counts);
    onProgress?.({ phase: 'swap', ...counts });
    if (!options.allowBehindLive) {
      const behind = await tx.query<{ accounts: number; examples: string[] | null }>(
        `SELECT count(*)::int AS accounts, (array_agg(o.account_id ORDER BY o.account_id))[1:5] AS examples
           FROM ${live}.balances o LEFT JOIN ${s}.balances n USING (account_id)
          WHERE n.stream_version IS NULL OR n.stream_version < o.stream_version`,
      );
      if (behind.rows[0].accounts > 0) throw new FoldBehindLiveError(behind.rows[0].accounts, behind.rows[0].examples ?? []);
    }
    // Balance streams learn of every account the shadow is ahead on (the live projection will find nothing to move).
    const { rows } = await tx.query<{ accounts: string }>(
      notifyBalancesChanged(`(SELECT n.account_id FROM ${s}.balances n LEFT JOIN ${live}.balances o USING (account_id)
                                WHERE o.stream_version IS DISTINCT FROM n.stream_version) moved`),
    );
    await tx.query(`DROP SCHEMA IF EXISTS ${retired} CASCADE`);
    await tx.query(`CREATE SCHEMA ${retired}`);
    for (const table of READ_MODEL_TABLES) {
      await tx.query(`ALTER TABLE ${live}.${table} SET SCHEMA ${retired}`);
      await tx.query(`ALTER TABLE ${s}.${table} SET SCHEMA ${live}`);
    }
    await tx.query(`DROP SCHEMA ${s}`);
    // Kept: out of `<schema>_retired`, which the next rebuild drops first (it holds only tables nobody asked to keep).
    const kept = options.keepRetired ? keptSchemaName(schema, new Date()) : undefined;
    if (kept) await tx.query(`ALTER SCHEMA ${retired} RENAME TO ${quoteIdentifier(kept)}`);
    const lockedMs = Date.now() - lockedAt;
    return {
      events: counts.events, skipped: counts.skipped, caughtUpAtSwap: locked.events, movedForward: Number(rows[0].accounts), lockedMs,
      ...(kept && { retiredSchema: kept }),
    };
  });
}

/** Applies the envelopes the projection can use; counts the others (the live projection dead-letters them). */
async function applyUsable(projection: LedgerProjection, tx: PoolClient, envelopes: Envelope<object>[], counts: { events: number; skipped: number }): Promise<void> {
  const usable = envelopes.filter((envelope) => {
    try {
      asLedgerEnvelope(envelope);
      return true;
    } catch {
      return false;
    }
  });
  await projection.apply(tx, usable);
  counts.events += usable.length;
  counts.skipped += envelopes.length - usable.length;
}

/** The read-model tables in `schema`, by the read models' own migrations (same columns, indexes and their names). */
export async function createReadModelTables(pool: Pool, schema: string): Promise<void> {
  const queryRunner = { connection: { driver: { schema } }, query: (sql: string) => pool.query(sql) } as unknown as QueryRunner;
  for (const Migration of READ_MODEL_MIGRATIONS as (new () => MigrationInterface)[]) await new Migration().up(queryRunner);
}

/** information_schema.columns as assertSameTables compares them: a column's name, its type with its length, precision and scale, and whether it takes nulls. */
const COLUMN_SHAPE = `table_name, column_name,
  udt_name || coalesce('(' || character_maximum_length || ')', '') || coalesce('(' || numeric_precision || ',' || numeric_scale || ')', '')
    || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END AS shape`;

/**
 * The read-model tables this code builds (`built`, from its migrations) have the columns of the live ones in `live`,
 * no more and no fewer, each of the same shape (COLUMN_SHAPE), and the same indexes and constraints: else this code (the operator CLI, run from a checkout)
 * is not the version the ledger runs. Its fold would lack columns a newer ledger writes (swapped in, that ledger's
 * projection fails every batch, and its migration, recorded as run, never runs again) or carry ones an older ledger
 * does not know; a verify would report differences that are only versions. Refused before the fold (the caller drops
 * the tables it built).
 */
async function assertSameTables(pool: Pool, live: string, built: string): Promise<void> {
  const { rows } = await pool.query<{ column: string; in_live: boolean; in_built: boolean }>(
    `WITH built AS (SELECT ${COLUMN_SHAPE} FROM information_schema.columns WHERE table_schema = $2),
          live AS (SELECT ${COLUMN_SHAPE} FROM information_schema.columns WHERE table_schema = $1
                     AND table_name IN (SELECT table_name FROM built))
     SELECT coalesce(l.table_name, b.table_name) || '.' || coalesce(l.column_name, b.column_name) || ' ' || coalesce(l.shape, b.shape) AS column,
            l.column_name IS NOT NULL AS in_live, b.column_name IS NOT NULL AS in_built
       FROM live l FULL JOIN built b ON (l.table_name, l.column_name, l.shape) = (b.table_name, b.column_name, b.shape)
      WHERE l.column_name IS NULL OR b.column_name IS NULL
      ORDER BY 1`,
    [live, built],
  );
  // Indexes too (a migration may add only an index): a swap puts the built tables' indexes in place of the live ones,
  // and the ledger's migration that made one, recorded as run, never makes it again. Compared by definition, the
  // schema taken out of it, the name kept (the migrations name every index).
  const indexes = await pool.query<{ column: string; in_live: boolean; in_built: boolean }>(
    `WITH built AS (SELECT tablename, replace(indexdef, ' ON ' || quote_ident(schemaname) || '.', ' ON ') AS def FROM pg_indexes WHERE schemaname = $2),
          live AS (SELECT tablename, replace(indexdef, ' ON ' || quote_ident(schemaname) || '.', ' ON ') AS def FROM pg_indexes WHERE schemaname = $1
                     AND tablename IN (SELECT tablename FROM built))
     SELECT 'index ' || coalesce(l.def, b.def) AS column, l.def IS NOT NULL AS in_live, b.def IS NOT NULL AS in_built
       FROM live l FULL JOIN built b ON (l.tablename, l.def) = (b.tablename, b.def)
      WHERE l.def IS NULL OR b.def IS NULL
      ORDER BY 1`,
    [live, built],
  );
  // And check, foreign-key and exclusion constraints (primary keys and unique ones are indexes, compared above): a swap
  // drops a live table's constraint as it drops its index. By name and definition, any schema taken out of it.
  const constraints = await pool.query<{ column: string; in_live: boolean; in_built: boolean }>(
    `WITH defs AS (SELECT n.nspname AS schema, t.relname AS tablename,
                          c.conname || ' ' || replace(pg_get_constraintdef(c.oid), quote_ident(n.nspname) || '.', '') AS def
                     FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
                    WHERE n.nspname IN ($1, $2) AND c.contype IN ('c', 'f', 'x')),
          built AS (SELECT tablename, def FROM defs WHERE schema = $2),
          live AS (SELECT tablename, def FROM defs WHERE schema = $1
                     AND tablename IN (SELECT relname FROM pg_class WHERE relnamespace = $2::regnamespace))
     SELECT 'constraint ' || coalesce(l.tablename, b.tablename) || '.' || coalesce(l.def, b.def) AS column, l.def IS NOT NULL AS in_live, b.def IS NOT NULL AS in_built
       FROM live l FULL JOIN built b ON (l.tablename, l.def) = (b.tablename, b.def)
      WHERE l.def IS NULL OR b.def IS NULL
      ORDER BY 1`,
    [live, built],
  );
  rows.push(...indexes.rows, ...constraints.rows);
  if (rows.length === 0) return;
  const onlyLive = rows.filter((row) => row.in_live).map((row) => row.column);
  const onlyBuilt = rows.filter((row) => row.in_built).map((row) => row.column);
  throw new Error(
    `refused: the read models of this CLI differ from the live ones in ${live}` +
      (onlyLive.length > 0 ? `; only the live tables have ${onlyLive.join(', ')}` : '') +
      (onlyBuilt.length > 0 ? `; only this CLI's have ${onlyBuilt.join(', ')}` : '') +
      '. Run the CLI of the version the ledger runs (its image, or a checkout of its commit); an index or constraint added by hand to a ' +
      'live table goes with a rebuild: drop it first, and make it again afterwards. Nothing was changed',
  );
}

/** One rebuild or verify per schema at a time (a session advisory lock on its own connection). */
export async function withRebuildLock<T>(pool: Pool, schema: string, work: () => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(hashtext('tally-read-model-rebuild'), hashtext($1)) AS locked`, [schema]);
    if (!rows[0].locked) throw new Error(`another read-model rebuild or verify of schema ${schema} is running`);
    try {
      return await work();
    } finally {
      await client.query(`SELECT pg_advisory_unlock(hashtext('tally-read-model-rebuild'), hashtext($1))`, [schema]);
    }
  } finally {
    client.release();
  }
}

export async function inTransaction<T>(pool: Pool, work: (tx: PoolClient) => Promise<T>): Promise<T> {
  const tx = await pool.connect();
  try {
    await tx.query('BEGIN');
    const result = await work(tx);
    await tx.query('COMMIT');
    tx.release();
    return result;
  } catch (error) {
    await tx.query('ROLLBACK').then(
      () => tx.release(),
      (rollbackError: Error) => tx.release(rollbackError),
    );
    throw error;
  }
}

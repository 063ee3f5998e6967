import type { Checkpoint } from '@tally/event-store';
import { quoteIdentifier } from '@tally/shared';
import type { Pool } from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { READ_MODEL_TABLES } from './ledger.projection';
import { catchUpByPage, foldIntoNewSchema, inTransaction, withRebuildLock, type FoldOptions } from './read-model-rebuild.projection';

export type ReadModelTable = (typeof READ_MODEL_TABLES)[number];

export interface ReadModelDifference {
  table: ReadModelTable;
  accountId: string;
  /** `differs`: same key, other values; `only in live`: a row the event store does not give; `missing in live`: the reverse. */
  kind: 'differs' | 'only in live' | 'missing in live';
  live?: Record<string, unknown>;
  fold?: Record<string, unknown>;
}

export interface VerifyReport {
  /** No difference and nothing pending: the live tables are exactly the fold of the event store. */
  identical: boolean;
  differenceCount: number;
  /** The first differences (at most `maxListed`). */
  differences: ReadModelDifference[];
  /** Accounts the live projection has not caught up with yet (events in the store it has not applied). */
  pending: number;
  /** Accounts the live tables moved past the fold while comparing (events newer than the fold's last read). */
  ahead: number;
  /**
   * The first pending and ahead accounts (at most `maxListed`), each with both sides' stream versions (null: no balance
   * row on that side): after the last comparison, which accounts did not settle (a live row deleted, an account whose
   * last events were dead-lettered or skipped, or a projection still catching up).
   */
  unsettled: { accountId: string; live: number | null; fold: number | null }[];
  rows: Record<ReadModelTable, { live: number; fold: number }>;
  /** Events folded from the event store. */
  events: number;
}

const MAX_LISTED = 100;

/**
 * Compares the live read models of `schema` with a fresh fold of the event store (into `<schema>_verify`, dropped
 * afterwards), row by row, in one snapshot of the live tables, while the live projection keeps running.
 *
 * Per account, rows are compared when the live balance and the fold's are at the same stream version: then its
 * balance, transactions and usage rows must be equal on both sides. An account the live tables are behind on is
 * `pending`, one they moved past the fold on (or hold and the fold has not read yet: opened after its last read) is
 * `ahead`; neither is a difference (a correction in between rewrites
 * older rows on one side only). Until nothing is pending or ahead (or `settleMs` passed) the fold catches up with the
 * store and the comparison runs again, so after the load stops a healthy ledger verifies `identical`.
 */
export async function verifyReadModels(options: FoldOptions & { settleMs?: number; maxListed?: number }): Promise<VerifyReport> {
  const { pool, schema, settleMs = 30_000, maxListed = MAX_LISTED } = options;
  const target = `${schema}_verify`;
  return withRebuildLock(pool, schema, async () => {
    try {
      const fold = await foldIntoNewSchema(options, target);
      const counts = { events: fold.events, skipped: fold.skipped };
      let next: Checkpoint = fold.next;
      const deadline = Date.now() + settleMs;
      for (;;) {
        const final = Date.now() >= deadline;
        const report = await compare(pool, schema, target, maxListed, final);
        if ((report.pending === 0 && report.ahead === 0) || final) return { ...report, events: counts.events };
        await sleep(250);
        ({ next } = await catchUpByPage(pool, options, target, next, counts));
      }
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(target)} CASCADE`);
    }
  });
}

/**
 * `final`: the last comparison. Before it, an account only the live tables hold is ahead (opened after the fold read
 * the store; the fold catches up with it); in it, one still only there is a difference.
 */
async function compare(pool: Pool, liveSchema: string, foldSchema: string, maxListed: number, final: boolean): Promise<Omit<VerifyReport, 'events'>> {
  const L = quoteIdentifier(liveSchema);
  const F = quoteIdentifier(foldSchema);
  // One snapshot of the live tables: the projection writes all three in one transaction.
  return inTransaction(pool, async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const differences: ReadModelDifference[] = [];
    let differenceCount = 0;
    const add = (difference: ReadModelDifference) => {
      differenceCount += 1;
      if (differences.length < maxListed) differences.push(difference);
    };

    const balances = await tx.query<{ account_id: string; live_version: number | null; fold_version: number | null; live: Record<string, unknown> | null; fold: Record<string, unknown> | null }>(
      `SELECT coalesce(l.account_id, f.account_id) AS account_id, l.stream_version AS live_version, f.stream_version AS fold_version,
              to_jsonb(l) AS live, to_jsonb(f) AS fold
         FROM ${L}.balances l FULL JOIN ${F}.balances f ON f.account_id = l.account_id
        WHERE to_jsonb(l) IS DISTINCT FROM to_jsonb(f)`,
    );
    let pending = 0;
    let ahead = 0;
    const unsettled: VerifyReport['unsettled'] = [];
    const unsettledOne = (row: (typeof balances.rows)[number]) => {
      if (unsettled.length < maxListed) unsettled.push({ accountId: row.account_id, live: row.live_version, fold: row.fold_version });
    };
    for (const row of balances.rows) {
      const base = { table: 'balances' as const, accountId: row.account_id };
      if (row.fold_version === null && !final) {
        ahead += 1;
        unsettledOne(row);
      } else if (row.fold_version === null) add({ ...base, kind: 'only in live', live: row.live ?? undefined });
      else if (row.live_version === null || row.live_version < row.fold_version) {
        pending += 1;
        unsettledOne(row);
      } else if (row.live_version > row.fold_version) {
        ahead += 1;
        unsettledOne(row);
      } else add({ ...base, kind: 'differs', live: row.live ?? undefined, fold: row.fold ?? undefined });
    }

    // The rows of each account both sides hold at the same stream version (a usage record's lines are a column of it).
    // Not up to the lower of two different versions: a correction in the gap (a refund, a void) rewrites older rows
    // on the side that has it (the corrected entry's corrections, the usage record's refunded), so an account pending
    // or ahead is only that, and is compared once it settles.
    const upTo = `(SELECT l.account_id, l.stream_version AS upto FROM ${L}.balances l JOIN ${F}.balances f USING (account_id) WHERE l.stream_version = f.stream_version)`;
    const sides: Record<Exclude<ReadModelTable, 'balances'>, (s: string) => string> = {
      ledger_transactions: (s) => `SELECT t.* FROM ${s}.ledger_transactions t JOIN ${upTo} v USING (account_id) WHERE t.stream_version <= v.upto`,
      usage_records: (s) => `SELECT t.* FROM ${s}.usage_records t JOIN ${upTo} v USING (account_id) WHERE t.stream_version <= v.upto`,
    };
    for (const [table, side] of Object.entries(sides) as [Exclude<ReadModelTable, 'balances'>, (s: string) => string][]) {
      const { rows } = await tx.query<{ kind: 'only in live' | 'missing in live'; row: Record<string, unknown> }>(
        `SELECT 'only in live' AS kind, to_jsonb(x) AS row FROM (${side(L)} EXCEPT ALL ${side(F)}) x
         UNION ALL
         SELECT 'missing in live', to_jsonb(x) FROM (${side(F)} EXCEPT ALL ${side(L)}) x
         UNION ALL
         SELECT 'only in live', to_jsonb(t) FROM ${L}.${table} t WHERE NOT EXISTS (SELECT 1 FROM ${F}.balances f WHERE f.account_id = t.account_id)
            ${final ? '' : `AND NOT EXISTS (SELECT 1 FROM ${L}.balances l WHERE l.account_id = t.account_id)`}`,
      );
      for (const { kind, row } of rows) {
        add({ table, accountId: String(row.account_id), kind, ...(kind === 'only in live' ? { live: row } : { fold: row }) });
      }
    }

    const rows = {} as VerifyReport['rows'];
    for (const table of READ_MODEL_TABLES) {
      const { rows: [count] } = await tx.query<{ live: string; fold: string }>(
        `SELECT (SELECT count(*) FROM ${L}.${table})::text AS live, (SELECT count(*) FROM ${F}.${table})::text AS fold`,
      );
      rows[table] = { live: Number(count.live), fold: Number(count.fold) };
    }
    return { identical: differenceCount === 0 && pending === 0 && ahead === 0, differenceCount, differences, pending, ahead, unsettled, rows };
  });
}

import { createTestSchema } from '@tally/testing';
import type { Pool, PoolClient } from 'pg';
import { HistoryByType1765600000000, LedgerProjection } from '@tally/ledger-read-models';
import type { QueryRunner } from 'typeorm';
import { transactionsPageSql } from '../../src/read-models/history/transactions.query';
import { usageExportPageSql } from '../../src/read-models/history/usage-export.service';
import { AccountStream } from './account-stream.fixtures';
import { applyBatch, migrateReadModels, testPool, transactionQueries } from './read-model.fixtures';

/** Usage debits in the busy account's history: enough that reading them all is what a test can see. */
const USAGES = 300_000;

/**
 * An account's history grows by a row per usage; what reads its other entries must not grow with it (issue 17: costs
 * that stay flat as history grows). Counted as the rows PostgreSQL fetched from ledger_transactions in the transaction
 * (pg_stat_xact_user_tables), so the expectation holds whatever plan the planner picks: without an index that finds
 * the account's grants, every plan reads the account's usage rows too.
 */
describe('history entries other than usage, in an account with 300,000 usage debits (PostgreSQL)', () => {
  let pool: Pool;
  let db: { schema: string; drop: () => Promise<void> };
  const busy = new AccountStream('busy');

  beforeAll(async () => {
    pool = testPool();
    db = await createTestSchema('history_scale');
    await migrateReadModels(db.schema);
    await applyBatch(pool, db.schema, [busy.opened(), busy.granted('purchased', '1000', 'busy-pack', { paymentReference: 'pay-busy' }), busy.granted('promotional', '5', 'busy-promo-early')]);
    const first = busy.streamVersion + 1;
    await pool.query(
      `INSERT INTO "${db.schema}".ledger_transactions (account_id, stream_version, event_id, type, amount, balance_after, occurred_at, details, actor)
       SELECT 'busy', v, 'busy:' || v, 'UsageDebited', -300, 1005000000 - (v - $1 + 1) * 300, timestamptz '2025-03-02' + (v - $1) * interval '1 second',
              jsonb_build_object('usageId', 'u-' || v, 'feature', 'chat', 'models', jsonb_build_array('gpt-4o-mini')), 'product'
         FROM generate_series($1::int, $1::int + $2::int - 1) v`,
      [first, USAGES],
    );
    busy.skip(USAGES);
    await applyBatch(pool, db.schema, [busy.granted('promotional', '5', 'busy-promo-late')]);
  }, 120_000);

  afterAll(async () => {
    await pool.end();
    await db.drop();
  });

  /**
   * Runs `work` in a transaction rolled back afterwards, and counts the ledger_transactions rows it fetched: the
   * transaction's counters after it less before it (a pooled connection's counters may still hold its earlier
   * transactions' reads until PostgreSQL reports them, which it does not do inside a transaction).
   */
  async function rowsRead<T>(work: (tx: PoolClient) => Promise<T>, table = 'ledger_transactions'): Promise<{ result: T; read: number }> {
    const tx = await pool.connect();
    const fetched = async () => {
      const { rows } = await tx.query<{ read: string }>(
        `SELECT (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::text AS read FROM pg_stat_xact_user_tables WHERE schemaname = $1 AND relname = $2`,
        [db.schema, table],
      );
      return Number(rows[0]?.read ?? 0);
    };
    try {
      await tx.query('BEGIN');
      const before = await fetched();
      const result = await work(tx);
      return { result, read: (await fetched()) - before };
    } finally {
      await tx.query('ROLLBACK');
      tx.release();
    }
  }

  it('a page of the account\'s grants reads its grants, not its usage', async () => {
    const { text, values } = transactionsPageSql(db.schema, 'busy', { types: ['CreditsGranted'], limit: 20 });
    const { result, read } = await rowsRead((tx) => tx.query<{ stream_version: number }>(text, values));
    expect(result.rows.map((row) => row.stream_version)).toEqual([USAGES + 4, 3, 2]);
    expect(read).toBeLessThan(100);

    // The service answers through the same statement: the grants, newest first, and no further page.
    const service = transactionQueries(pool, db.schema);
    const page = await service.page('busy', { type: 'CreditsGranted' });
    expect(page.items.map((item) => [item.streamVersion, item.details.grantId])).toEqual([[USAGES + 4, 'busy-promo-late'], [3, 'busy-promo-early'], [2, 'busy-pack']]);
    expect(page.nextCursor).toBeNull();
  });

  it('the usage itself still pages newest first, and types mixed with usage too', async () => {
    const service = transactionQueries(pool, db.schema);
    const usage = await service.page('busy', { type: 'UsageDebited', limit: '2' });
    expect(usage.items.map((item) => item.streamVersion)).toEqual([USAGES + 3, USAGES + 2]);
    const mixed = await service.page('busy', { type: 'CreditsGranted,UsageDebited', limit: '3' });
    expect(mixed.items.map((item) => [item.streamVersion, item.type])).toEqual([[USAGES + 4, 'CreditsGranted'], [USAGES + 3, 'UsageDebited'], [USAGES + 2, 'UsageDebited']]);
  });

  it('a page of the history up to a time in its middle reads that page, not the half of the history on either side', async () => {
    // Usage n (0-based) is at 2025-03-02 + n s, stream version n + 4: the middle one is 150,000 s in.
    const middle = new Date(Date.parse('2025-03-02T00:00:00Z') + (USAGES / 2) * 1000);
    const filter = { to: middle, limit: 20 };
    const first = await rowsRead((tx) => tx.query<{ stream_version: number }>(transactionsPageSql(db.schema, 'busy', filter)));
    expect(first.result.rows.slice(0, 3).map((row) => row.stream_version)).toEqual([USAGES / 2 + 3, USAGES / 2 + 2, USAGES / 2 + 1]);
    expect(first.read).toBeLessThan(1_000);

    // Through the service, and on to the next page by its cursor: still only the page's rows.
    const service = transactionQueries(pool, db.schema);
    const page = await service.page('busy', { to: middle.toISOString(), limit: '20' });
    expect(page.items.map((item) => item.streamVersion)).toEqual(Array.from({ length: 20 }, (_, i) => USAGES / 2 + 3 - i));
    const next = await service.page('busy', { to: middle.toISOString(), limit: '20', cursor: page.nextCursor as string });
    expect(next.items.map((item) => item.streamVersion)).toEqual(Array.from({ length: 20 }, (_, i) => USAGES / 2 - 17 - i));
    // A cursor holds its page's order: one of a page in stream order is refused for a window, and the other way round.
    const unfiltered = await service.page('busy', { limit: '1' });
    await expect(service.page('busy', { to: middle.toISOString(), cursor: unfiltered.nextCursor as string })).rejects.toMatchObject({ issues: [expect.objectContaining({ field: 'cursor' })] });
    await expect(service.page('busy', { cursor: page.nextCursor as string })).rejects.toMatchObject({ issues: [expect.objectContaining({ field: 'cursor' })] });

    // A window in the middle, and the windows before and after everything: each reads little.
    for (const window of [
      { from: new Date(middle.getTime() - 60_000), to: middle },
      { to: new Date('2020-01-01T00:00:00Z') },
      { from: new Date('2030-01-01T00:00:00Z') },
      { from: new Date('2025-03-02T00:00:00Z'), to: new Date('2030-01-01T00:00:00Z') },
    ]) {
      const { read: windowRead } = await rowsRead((tx) => tx.query(transactionsPageSql(db.schema, 'busy', { ...window, limit: 20 })));
      expect({ window, read: windowRead < 1_000 }).toEqual({ window, read: true });
    }
  });

  it("a page of the usage export reads that page's rows, not the rest of the range", async () => {
    await pool.query(
      `INSERT INTO "${db.schema}".usage_records (account_id, usage_id, stream_version, occurred_at, feature, models, input_tokens, output_tokens, images, video_seconds, amount, rate_card_version)
       SELECT 'busy', 'u-' || v, v, timestamptz '2025-03-02' + v * interval '1 second', 'chat', 'gpt-4o-mini', 0, 100, 0, 0, 300, '2025-01'
         FROM generate_series(1, $1::int) v`,
      [USAGES],
    );
    await pool.query(`ANALYZE "${db.schema}".usage_records`);
    const range = { from: new Date('2025-03-01T00:00:00Z'), to: new Date('2025-04-01T00:00:00Z') };
    const first = await rowsRead((tx) => tx.query<{ usage_id: string }>(usageExportPageSql(`"${db.schema}"`, 'busy', range, 1000, undefined)), 'usage_records');
    expect(first.result.rows.map((row) => row.usage_id).slice(0, 2)).toEqual(['u-1', 'u-2']);
    expect(first.read).toBeLessThan(5_000);
    const last = first.result.rows[first.result.rows.length - 1] as unknown as { occurred_at: string; usage_id: string };
    const next = await rowsRead((tx) => tx.query<{ usage_id: string }>(usageExportPageSql(`"${db.schema}"`, 'busy', range, 1000, { occurredAt: last.occurred_at, usageId: last.usage_id })), 'usage_records');
    expect(next.result.rows[0].usage_id).toBe('u-1001');
    expect(next.read).toBeLessThan(5_000);
  });

  it('voiding a grant made after the usage finds the grant without reading the usage', async () => {
    const voided = busy.grantVoided('void:late', 'busy-promo-late', 'promotional', '5');
    const { read } = await rowsRead(async (tx) => {
      await new LedgerProjection(db.schema).apply(tx, [voided]);
      const { rows } = await tx.query<{ details: { corrections?: unknown[] } }>(
        `SELECT details FROM "${db.schema}".ledger_transactions WHERE account_id = 'busy' AND stream_version = $1`,
        [USAGES + 4],
      );
      // The correction is linked to the grant it voids (what the lookup is for).
      expect(rows[0].details.corrections).toEqual([{ type: 'GrantVoided', streamVersion: USAGES + 5, amount: '5' }]);
    });
    expect(read).toBeLessThan(100);
  });

  // CREATE INDEX CONCURRENTLY interrupted half-way (a deploy killed mid-migration) leaves the index invalid: unused by
  // the planner, and kept by IF NOT EXISTS. Marked invalid here through the catalog (the test runs as a superuser).
  it('builds the index again over one an interrupted migration left invalid', async () => {
    const index = `"${db.schema}".ledger_transactions_account_type_idx`;
    const valid = async () => (await pool.query<{ valid: boolean }>(`SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass($1)`, [index])).rows[0]?.valid;
    await pool.query(`UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass($1)`, [index]);
    expect(await valid()).toBe(false);
    const { text, values } = transactionsPageSql(db.schema, 'busy', { types: ['CreditsGranted'], limit: 20 });
    expect((await rowsRead((tx) => tx.query(text, values))).read).toBeGreaterThan(USAGES);

    const queryRunner = { connection: { driver: { schema: db.schema } }, query: (sql: string) => pool.query(sql) } as unknown as QueryRunner;
    await new HistoryByType1765600000000().up(queryRunner);
    expect(await valid()).toBe(true);
    expect((await rowsRead((tx) => tx.query(text, values))).read).toBeLessThan(100);
  });
});

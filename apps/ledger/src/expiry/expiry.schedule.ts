import type { Pool } from 'pg';

/** What expires: an open hold (its hold id) or a promotional grant with an expiry (its bucket id). */
export type ExpiryKind = 'hold' | 'credits';

export interface DueExpiry {
  accountId: string;
  kind: ExpiryKind;
  itemId: string;
  dueAt: Date;
}

/**
 * The ledger's wake-up list (`expiries`): which hold or expiring grant of which account may be due when. It is only
 * an index, never the truth: the account's event stream decides whether the item is still open and due. A row is
 * written before the event that creates the item is appended (so a crash can leave a row without an item, never an
 * item without a row) and removed by the expiry worker once the account no longer has the item open.
 */
export class ExpirySchedule {
  private readonly table: string;

  constructor(
    private readonly pool: Pool,
    private readonly schema: string,
  ) {
    this.table = `"${schema}".expiries`;
  }

  /** Idempotent: a retried command keeps the first (earliest) time; the worker moves it to the item's own. */
  async add(accountId: string, kind: ExpiryKind, itemId: string, dueAt: string): Promise<void> {
    await this.pool.query({
      name: `expiries-add:${this.schema}`,
      text: `insert into ${this.table} (account_id, kind, item_id, due_at) values ($1, $2, $3, $4) on conflict do nothing`,
      values: [accountId, kind, itemId, dueAt],
    });
  }

  /**
   * Claims up to `limit` rows due at `now`, oldest first, for `leaseMs`: their time moves to `now + leaseMs`, so another
   * replica's claim skips them (rows another claim holds locked are skipped too), and a worker that dies mid-way leaves
   * them due again when the lease ends. Each comes back with the time it was due.
   */
  async claim(now: Date, limit: number, leaseMs: number): Promise<DueExpiry[]> {
    const { rows } = await this.pool.query<{ account_id: string; kind: ExpiryKind; item_id: string; due_at: Date }>({
      name: `expiries-claim:${this.schema}`,
      text: `with due as (
               select account_id, kind, item_id, due_at from ${this.table}
               where due_at <= $1 order by due_at limit $2 for update skip locked
             )
             update ${this.table} claimed set due_at = $3
             from due where claimed.account_id = due.account_id and claimed.kind = due.kind and claimed.item_id = due.item_id
             returning claimed.account_id, claimed.kind, claimed.item_id, due.due_at`,
      values: [now, limit, new Date(now.getTime() + leaseMs)],
    });
    return rows
      .map((row) => ({ accountId: row.account_id, kind: row.kind, itemId: row.item_id, dueAt: row.due_at }))
      .sort((x, y) => x.dueAt.getTime() - y.dueAt.getTime());
  }

  /** How many rows are due at `now` (counted up to `countLimit`) and how long the oldest has been due, for the metrics. */
  async backlog(now: Date, countLimit: number): Promise<{ rows: number; oldestSeconds: number }> {
    const { rows } = await this.pool.query<{ rows: number; oldest: Date | null }>(
      `select count(*)::int as rows, min(due_at) as oldest from (select due_at from ${this.table} where due_at <= $1 order by due_at limit $2) due`,
      [now, countLimit],
    );
    const oldest = rows[0].oldest;
    return { rows: rows[0].rows, oldestSeconds: oldest ? Math.max(0, (now.getTime() - oldest.getTime()) / 1000) : 0 };
  }

  async reschedule({ accountId, kind, itemId }: DueExpiry, dueAt: string): Promise<void> {
    await this.pool.query(`update ${this.table} set due_at = $4 where account_id = $1 and kind = $2 and item_id = $3`, [accountId, kind, itemId, dueAt]);
  }

  /** Removes the rows of `items` (one statement). */
  async remove(items: DueExpiry[]): Promise<void> {
    if (items.length === 0) return;
    await this.pool.query({
      name: `expiries-remove:${this.schema}`,
      text: `delete from ${this.table} e using unnest($1::text[], $2::text[], $3::text[]) as done(account_id, kind, item_id)
             where e.account_id = done.account_id and e.kind = done.kind and e.item_id = done.item_id`,
      values: [items.map((item) => item.accountId), items.map((item) => item.kind), items.map((item) => item.itemId)],
    });
  }
}

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

  async due(now: Date, limit: number): Promise<DueExpiry[]> {
    const { rows } = await this.pool.query<{ account_id: string; kind: ExpiryKind; item_id: string; due_at: Date }>(
      `select account_id, kind, item_id, due_at from ${this.table} where due_at <= $1 order by due_at limit $2`,
      [now, limit],
    );
    return rows.map((row) => ({ accountId: row.account_id, kind: row.kind, itemId: row.item_id, dueAt: row.due_at }));
  }

  async reschedule({ accountId, kind, itemId }: DueExpiry, dueAt: string): Promise<void> {
    await this.pool.query(`update ${this.table} set due_at = $4 where account_id = $1 and kind = $2 and item_id = $3`, [accountId, kind, itemId, dueAt]);
  }

  async remove({ accountId, kind, itemId }: DueExpiry): Promise<void> {
    await this.pool.query(`delete from ${this.table} where account_id = $1 and kind = $2 and item_id = $3`, [accountId, kind, itemId]);
  }
}

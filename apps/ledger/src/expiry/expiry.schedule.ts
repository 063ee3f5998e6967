import type { Pool } from 'pg';

export interface DueHold {
  accountId: string;
  holdId: string;
  expiresAt: Date;
}

/**
 * The ledger's wake-up list for holds (`hold_expiries`): which hold of which account may expire when. It is only
 * an index, never the truth: the account's event stream decides whether a hold is still open and due. A row is
 * written before its HoldPlaced is appended (so a crash can leave a row without a hold, never a hold without a
 * row) and removed by the expiry worker once the account no longer holds it.
 */
export class HoldExpirySchedule {
  private readonly table: string;

  constructor(
    private readonly pool: Pool,
    private readonly schema: string,
  ) {
    this.table = `"${schema}".hold_expiries`;
  }

  /** Idempotent: a retried PlaceHold keeps the first (earliest) time; the worker moves it to the hold's own. */
  async add(accountId: string, holdId: string, expiresAt: string): Promise<void> {
    await this.pool.query({
      name: `hold-expiries-add:${this.schema}`,
      text: `insert into ${this.table} (account_id, hold_id, expires_at) values ($1, $2, $3) on conflict do nothing`,
      values: [accountId, holdId, expiresAt],
    });
  }

  async due(now: Date, limit: number): Promise<DueHold[]> {
    const { rows } = await this.pool.query<{ account_id: string; hold_id: string; expires_at: Date }>(
      `select account_id, hold_id, expires_at from ${this.table} where expires_at <= $1 order by expires_at limit $2`,
      [now, limit],
    );
    return rows.map((row) => ({ accountId: row.account_id, holdId: row.hold_id, expiresAt: row.expires_at }));
  }

  async reschedule(accountId: string, holdId: string, expiresAt: string): Promise<void> {
    await this.pool.query(`update ${this.table} set expires_at = $3 where account_id = $1 and hold_id = $2`, [accountId, holdId, expiresAt]);
  }

  async remove(accountId: string, holdId: string): Promise<void> {
    await this.pool.query(`delete from ${this.table} where account_id = $1 and hold_id = $2`, [accountId, holdId]);
  }
}

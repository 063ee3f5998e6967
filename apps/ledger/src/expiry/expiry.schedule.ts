import type { Pool } from 'pg';

/** What expires: an open hold (its hold id) or a promotional grant with an expiry (its bucket id). */
export type ExpiryKind = 'hold' | 'credits';

/** A row the worker claimed. */
export interface DueExpiry {
  accountId: string;
  kind: ExpiryKind;
  itemId: string;
  /** When the row first came due (the grace for an item not known yet counts from it). */
  dueAt: Date;
  /** The claim's lease: the row's time while this claim holds it; a change by this claim applies only while it still does. */
  lease: Date;
}

/**
 * The ledger's wake-up list (`expiries`): which hold or expiring grant of which account may be due when. It is only
 * an index, never the truth: the account's event stream decides whether the item is still open and due. A row is
 * written before the event that creates the item is appended (so a crash can leave a row without an item, never an
 * item without a row) and removed by the expiry worker once the account no longer has the item open.
 *
 * The worker claims due rows under a lease (their time moved to the lease's end, so other replicas skip them) and
 * then removes each row, moves it to its item's own time, or has it due again later; each of those applies only while
 * the row still holds that claim's lease and the first-due time the claim read, so a claim that outlived its lease
 * (another replica took the row over) or whose row was added again meanwhile (`add`) changes nothing.
 */
export class ExpirySchedule {
  private readonly table: string;

  constructor(
    private readonly pool: Pool,
    private readonly schema: string,
  ) {
    this.table = `"${schema}".expiries`;
  }

  /**
   * Idempotent: a retried command keeps the earliest time asked for (a grant first sent with a later expiry, refused,
   * then with an earlier one, is due at the earlier); the worker moves it to the item's own. A row a claim holds is
   * taken from it (its first-due time cleared: the claim's changes match on it), so a refused hold, given up on by
   * the worker as never placed while the retry placed it, keeps its row.
   */
  async add(accountId: string, kind: ExpiryKind, itemId: string, dueAt: string): Promise<void> {
    await this.pool.query({
      name: `expiries-add:${this.schema}`,
      text: `insert into ${this.table} as e (account_id, kind, item_id, due_at) values ($1, $2, $3, $4)
             on conflict (account_id, kind, item_id) do update set due_at = least(e.due_at, excluded.due_at), first_due_at = null`,
      values: [accountId, kind, itemId, dueAt],
    });
  }

  /**
   * After the append of an item whose row `add` wrote first: when the append ended at or after the row's due time, the
   * worker may have looked for the item before it was committed and, past its grace, removed the row as never placed
   * (ExpiryWorker.lookAgainIfUnknown); the row is added again, so the worker finds the item and expires it. Nothing to
   * do (no statement) in the usual case, a due time still ahead.
   */
  async addAgainIfDue(accountId: string, kind: ExpiryKind, itemId: string, dueAt: string, now: Date): Promise<void> {
    if (now.getTime() >= Date.parse(dueAt)) await this.add(accountId, kind, itemId, dueAt);
  }

  /**
   * Claims up to `limit` rows due at `now`, oldest first, until `now + leaseMs`: their time moves to the lease's end,
   * so another replica's claim skips them (rows another claim holds locked are skipped too), and a worker that dies
   * mid-way leaves them due again when the lease ends. Each comes back with the time it first came due.
   */
  async claim(now: Date, limit: number, leaseMs: number): Promise<DueExpiry[]> {
    const lease = new Date(now.getTime() + leaseMs);
    const { rows } = await this.pool.query<{ account_id: string; kind: ExpiryKind; item_id: string; first_due_at: Date }>({
      name: `expiries-claim:${this.schema}`,
      text: `with due as (
               select account_id, kind, item_id, coalesce(first_due_at, due_at) as first_due_at from ${this.table}
               where due_at <= $1 order by due_at limit $2 for update skip locked
             )
             update ${this.table} claimed set due_at = $3, first_due_at = due.first_due_at
             from due where claimed.account_id = due.account_id and claimed.kind = due.kind and claimed.item_id = due.item_id
             returning claimed.account_id, claimed.kind, claimed.item_id, claimed.first_due_at`,
      values: [now, limit, lease],
    });
    return rows
      .map((row) => ({ accountId: row.account_id, kind: row.kind, itemId: row.item_id, dueAt: row.first_due_at, lease }))
      .sort((x, y) => x.dueAt.getTime() - y.dueAt.getTime());
  }

  /** Moves a claimed row to its item's own time (an open hold or grant not due yet): due for the first time again then. */
  async reschedule(item: DueExpiry, dueAt: string): Promise<void> {
    await this.pool.query({
      name: `expiries-reschedule:${this.schema}`,
      text: `update ${this.table} set due_at = $4, first_due_at = null
              where account_id = $1 and kind = $2 and item_id = $3 and due_at = $5 and first_due_at = $6`,
      values: [item.accountId, item.kind, item.itemId, dueAt, item.lease, item.dueAt],
    });
  }

  /** Has claimed rows due again at `at` (a look again, a failure's backoff, a worker stopping), still counted as due since they first were. */
  async retryAt(items: DueExpiry[], at: Date): Promise<void> {
    if (items.length === 0) return;
    await this.pool.query({
      name: `expiries-retry:${this.schema}`,
      text: `update ${this.table} e set due_at = $6
             from unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[]) as claimed(account_id, kind, item_id, lease, first_due_at)
             where e.account_id = claimed.account_id and e.kind = claimed.kind and e.item_id = claimed.item_id and e.due_at = claimed.lease
               and e.first_due_at = claimed.first_due_at`,
      values: [...columns(items), at],
    });
  }

  /** Removes claimed rows (one statement). */
  async remove(items: DueExpiry[]): Promise<void> {
    if (items.length === 0) return;
    await this.pool.query({
      name: `expiries-remove:${this.schema}`,
      text: `delete from ${this.table} e using unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[]) as claimed(account_id, kind, item_id, lease, first_due_at)
             where e.account_id = claimed.account_id and e.kind = claimed.kind and e.item_id = claimed.item_id and e.due_at = claimed.lease
               and e.first_due_at = claimed.first_due_at`,
      values: columns(items),
    });
  }

  /**
   * For the metrics: how many rows are due at `now` (counted up to `countLimit`), and how long ago the oldest row still
   * waiting first came due (0 when none): a row due and not taken, or one taken and not done with (looked at again,
   * failing), whose time has moved on.
   */
  async backlog(now: Date, countLimit: number): Promise<{ rows: number; oldestSeconds: number }> {
    const { rows } = await this.pool.query<{ rows: number; oldest_due: Date | null; oldest_taken: Date | null }>({
      name: `expiries-backlog:${this.schema}`,
      text: `select (select count(*)::int from (select 1 from ${this.table} where due_at <= $1 limit $2) due) as rows,
                    (select due_at from ${this.table} where due_at <= $1 order by due_at limit 1) as oldest_due,
                    (select first_due_at from ${this.table} where first_due_at is not null order by first_due_at limit 1) as oldest_taken`,
      values: [now, countLimit],
    });
    const oldest = [rows[0].oldest_due, rows[0].oldest_taken].filter((at): at is Date => at !== null).map((at) => at.getTime());
    return { rows: rows[0].rows, oldestSeconds: oldest.length === 0 ? 0 : Math.max(0, (now.getTime() - Math.min(...oldest)) / 1000) };
  }
}

/** The claimed rows as arrays, to match each on its claim: the lease it holds and the first-due time it read. */
const columns = (items: DueExpiry[]) => [items.map((i) => i.accountId), items.map((i) => i.kind), items.map((i) => i.itemId), items.map((i) => i.lease), items.map((i) => i.dueAt)];

import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { AccountState } from '@tally/ledger-domain';
import { ACCOUNT_STATE_VERSION, READ_ACCOUNT_STATE_VERSIONS, decodeAccountState, encodeAccountState } from '@tally/ledger-events';

export interface AccountSnapshot {
  /** The stream version the state folds. */
  version: number;
  /**
   * The id of the event at `version` and when it was recorded (ms): a loader folds the stream again when the stream
   * holds another event there, or the same id recorded at another instant.
   */
  eventId?: string;
  eventAt?: number;
  state: AccountState;
}

/**
 * The latest snapshot of each long account stream (`account_snapshots`). A cache of the event store, never the truth:
 * written only from states of committed events at ACCOUNT_STATE_VERSION, and read at READ_ACCOUNT_STATE_VERSIONS: a
 * snapshot of any other version is ignored (the stream is folded again and snapshotted anew). A write never moves a
 * stream's snapshot back to an older version; one at the same version with another event there (or the same id
 * recorded at another instant) replaces it: the stream was written again after the database went back in time.
 * Snapshots taken before they knew their event have none (`event_id`, `event_at` null).
 */
export class AccountSnapshotRepository {
  private readonly table: string;

  constructor(
    private readonly pool: Pool,
    private readonly schema: string,
  ) {
    this.table = `"${schema}".account_snapshots`;
  }

  /** `client`: read on that connection (a consumer's transaction), not one more of the pool's. */
  async read(streamIds: readonly string[], client: Pick<Pool, 'query'> = this.pool): Promise<Map<string, AccountSnapshot>> {
    const snapshots = new Map<string, AccountSnapshot>();
    if (streamIds.length === 0) return snapshots;
    const { rows } = await client.query<{ stream_id: string; version: number; event_id: string | null; event_at: Date | null; state_version: number; state: string }>({
      name: `account-snapshots-read:${this.schema}`,
      text: `select stream_id, version, event_id::text, event_at, state_version, state from ${this.table}
             where stream_id = any($1::text[]) and state_version = any($2::int[])`,
      values: [streamIds, READ_ACCOUNT_STATE_VERSIONS],
    });
    for (const row of rows) {
      snapshots.set(row.stream_id, {
        version: row.version,
        ...(row.event_id !== null && { eventId: row.event_id }),
        ...(row.event_at !== null && { eventAt: row.event_at.getTime() }),
        state: decodeAccountState(row.state, row.state_version),
      });
    }
    return snapshots;
  }

  async write(streamId: string, { version, eventId, eventAt, state }: AccountSnapshot): Promise<void> {
    await this.pool.query({
      name: `account-snapshots-write:${this.schema}`,
      text: `insert into ${this.table} as s (stream_id, version, event_id, event_at, state_version, state) values ($1, $2, $3, $4, $5, $6)
             on conflict (stream_id) do update set version = excluded.version, event_id = excluded.event_id, event_at = excluded.event_at,
               state_version = excluded.state_version, state = excluded.state, taken_at = now()
             where s.version < excluded.version or s.state_version <> excluded.state_version
               or (s.version = excluded.version and (s.event_id, s.event_at) is distinct from (excluded.event_id, excluded.event_at))`,
      values: [streamId, version, eventId ?? null, eventAt === undefined ? null : new Date(eventAt), ACCOUNT_STATE_VERSION, encodeAccountState(state)],
    });
  }
}

/** What the AccountRepository needs to snapshot (absent: snapshots off, e.g. EventStoreDB or ACCOUNT_SNAPSHOT_EVERY=0). */
export const ACCOUNT_SNAPSHOTS = Symbol('ACCOUNT_SNAPSHOTS');

export interface AccountSnapshots {
  store: AccountSnapshotRepository;
  /** Snapshot every this many events of a stream (ACCOUNT_SNAPSHOT_EVERY). */
  every: number;
  logger: Pick<Logger, 'warn'>;
  /**
   * A stream longer than this folded whole (a refund of a debit the account forgot) is read this many events at a
   * time, forgetting between pages (AccountRepository.foldForgetting); WHOLE_FOLD_PAGE by default.
   */
  wholeFoldPage?: number;
}

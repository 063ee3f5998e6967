import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { AccountState } from '@tally/ledger-domain';
import { ACCOUNT_STATE_VERSION, READ_ACCOUNT_STATE_VERSIONS, decodeAccountState, encodeAccountState } from '@tally/ledger-events';

export interface AccountSnapshot {
  /** The stream version the state folds. */
  version: number;
  state: AccountState;
}

/**
 * The latest snapshot of each long account stream (`account_snapshots`). A cache of the event store, never the truth:
 * written only from states of committed events at ACCOUNT_STATE_VERSION, and read at READ_ACCOUNT_STATE_VERSIONS: a
 * snapshot of any other version is ignored (the stream is folded again and snapshotted anew). A write never moves a
 * stream's snapshot back to an older version.
 */
export class AccountSnapshotRepository {
  private readonly table: string;

  constructor(
    private readonly pool: Pool,
    private readonly schema: string,
  ) {
    this.table = `"${schema}".account_snapshots`;
  }

  async read(streamIds: readonly string[]): Promise<Map<string, AccountSnapshot>> {
    const snapshots = new Map<string, AccountSnapshot>();
    if (streamIds.length === 0) return snapshots;
    const { rows } = await this.pool.query<{ stream_id: string; version: number; state_version: number; state: string }>({
      name: `account-snapshots-read:${this.schema}`,
      text: `select stream_id, version, state_version, state from ${this.table} where stream_id = any($1::text[]) and state_version = any($2::int[])`,
      values: [streamIds, READ_ACCOUNT_STATE_VERSIONS],
    });
    for (const row of rows) snapshots.set(row.stream_id, { version: row.version, state: decodeAccountState(row.state, row.state_version) });
    return snapshots;
  }

  async write(streamId: string, { version, state }: AccountSnapshot): Promise<void> {
    await this.pool.query({
      name: `account-snapshots-write:${this.schema}`,
      text: `insert into ${this.table} as s (stream_id, version, state_version, state) values ($1, $2, $3, $4)
             on conflict (stream_id) do update set version = excluded.version, state_version = excluded.state_version,
               state = excluded.state, taken_at = now()
             where s.version < excluded.version or s.state_version <> excluded.state_version`,
      values: [streamId, version, ACCOUNT_STATE_VERSION, encodeAccountState(state)],
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
}

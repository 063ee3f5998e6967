import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The latest snapshot of each long account stream (accounts/account-snapshot.repository.ts): the state folded up to
 * `version`, encoded at `state_version` (ledger-events, account-state.codec.ts). Only a cache of the event store:
 * dropping every row loses nothing but the time of folding those streams again.
 */
export class AccountSnapshots1764600000000 implements MigrationInterface {
  name = 'AccountSnapshots1764600000000';

  async up(runner: QueryRunner): Promise<void> {
    const s = `"${runner.connection.driver.schema ?? 'public'}"`;
    await runner.query(`create table if not exists ${s}.account_snapshots (
      stream_id text primary key,
      version integer not null check (version >= 1),
      state_version integer not null,
      state text not null,
      taken_at timestamptz not null default now()
    )`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`drop table if exists "${runner.connection.driver.schema ?? 'public'}".account_snapshots`);
  }
}

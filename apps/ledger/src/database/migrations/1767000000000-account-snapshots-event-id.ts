import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The id of the event at each snapshot's version and when it was recorded (accounts/account-snapshot.repository.ts): a
 * loader folds the stream again when the stream holds another event there, or the same id recorded at another instant
 * (written again after the database went back in time). Null for snapshots taken before: their first load reads the
 * event at their version and the next snapshot records it.
 */
export class AccountSnapshotsEventId1767000000000 implements MigrationInterface {
  name = 'AccountSnapshotsEventId1767000000000';

  async up(runner: QueryRunner): Promise<void> {
    const table = `"${runner.connection.driver.schema ?? 'public'}".account_snapshots`;
    await runner.query(`alter table ${table} add column if not exists event_id uuid, add column if not exists event_at timestamptz`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`alter table "${runner.connection.driver.schema ?? 'public'}".account_snapshots drop column if exists event_id, drop column if exists event_at`);
  }
}

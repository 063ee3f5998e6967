import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Where the ledger-events relay has published up to (an event-store checkpoint). */
export class RelayCheckpoints1763700001000 implements MigrationInterface {
  name = 'RelayCheckpoints1763700001000';

  async up(runner: QueryRunner): Promise<void> {
    const schema = runner.connection.driver.schema ?? 'public';
    await runner.query(`create table if not exists "${schema}".relay_checkpoints (
      name text primary key,
      checkpoint text not null,
      updated_at timestamptz not null default now()
    )`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`drop table if exists "${runner.connection.driver.schema ?? 'public'}".relay_checkpoints`);
  }
}

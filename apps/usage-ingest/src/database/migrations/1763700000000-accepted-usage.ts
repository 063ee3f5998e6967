import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Usage ids already handed to Kafka, to report duplicates (the ledger is the authority on applying once). */
export class AcceptedUsage1763700000000 implements MigrationInterface {
  name = 'AcceptedUsage1763700000000';

  async up(runner: QueryRunner): Promise<void> {
    const schema = runner.connection.driver.schema ?? 'public';
    await runner.query(`create schema if not exists "${schema}"`);
    await runner.query(`create table if not exists "${schema}".accepted_usage (
      account_id text not null,
      usage_id text not null,
      fingerprint text not null,
      accepted_at timestamptz not null default now(),
      primary key (account_id, usage_id)
    )`);
  }

  async down(runner: QueryRunner): Promise<void> {
    const schema = runner.connection.driver.schema ?? 'public';
    await runner.query(`drop table if exists "${schema}".accepted_usage`);
  }
}

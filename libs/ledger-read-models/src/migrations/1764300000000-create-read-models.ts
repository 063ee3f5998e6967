import type { MigrationInterface, QueryRunner } from 'typeorm';
import { schemaOf } from './schema-name.migration';

/** The ledger's read models (balances, transactions, usage), in the DataSource's schema (DATABASE_SCHEMA). */
export class CreateReadModels1764300000000 implements MigrationInterface {
  readonly name = 'CreateReadModels1764300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    await queryRunner.query(`
      CREATE TABLE ${s}.balances (
        account_id varchar(128) PRIMARY KEY,
        stream_version integer NOT NULL,
        available bigint NOT NULL,
        allowance bigint NOT NULL,
        promotional bigint NOT NULL,
        purchased bigint NOT NULL,
        held bigint NOT NULL,
        overdraft bigint NOT NULL,
        allocation bigint NOT NULL,
        used_this_cycle bigint NOT NULL,
        cycle_id varchar(200),
        cycle_start timestamptz,
        cycle_end timestamptz,
        plan_id varchar(64),
        unlimited boolean NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
    await queryRunner.query(`
      CREATE TABLE ${s}.ledger_transactions (
        account_id varchar(128) NOT NULL,
        stream_version integer NOT NULL,
        event_id varchar(200) NOT NULL,
        type varchar(64) NOT NULL,
        amount bigint,
        balance_after bigint NOT NULL,
        occurred_at timestamptz NOT NULL,
        details jsonb NOT NULL,
        PRIMARY KEY (account_id, stream_version)
      )`);
    // Replaced by HistoryByTime1766200000000 (pages asked for a time window are in time order); by type: HistoryByType1765600000000.
    await queryRunner.query(`CREATE INDEX ledger_transactions_account_occurred_idx ON ${s}.ledger_transactions (account_id, occurred_at)`);
    await queryRunner.query(`
      CREATE TABLE ${s}.usage_records (
        account_id varchar(128) NOT NULL,
        usage_id varchar(128) NOT NULL,
        stream_version integer NOT NULL,
        occurred_at timestamptz NOT NULL,
        feature varchar(32) NOT NULL,
        models text NOT NULL,
        input_tokens bigint NOT NULL,
        output_tokens bigint NOT NULL,
        images integer NOT NULL,
        resolution varchar(32),
        video_seconds integer NOT NULL,
        amount bigint NOT NULL,
        rate_card_version varchar(64) NOT NULL,
        PRIMARY KEY (account_id, usage_id)
      )`);
    // (account_id, occurred_at) for the breakdowns; usage_id last makes it the export's keyset order too.
    await queryRunner.query(`CREATE INDEX usage_records_account_occurred_idx ON ${s}.usage_records (account_id, occurred_at, usage_id)`);
    await queryRunner.query(`
      CREATE TABLE ${s}.usage_lines (
        account_id varchar(128) NOT NULL,
        usage_id varchar(128) NOT NULL,
        model varchar(128) NOT NULL,
        feature varchar(32) NOT NULL,
        amount bigint NOT NULL,
        input_tokens bigint NOT NULL,
        output_tokens bigint NOT NULL,
        occurred_at timestamptz NOT NULL,
        PRIMARY KEY (account_id, usage_id, model)
      )`);
    await queryRunner.query(`CREATE INDEX usage_lines_account_occurred_idx ON ${s}.usage_lines (account_id, occurred_at)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    for (const table of ['usage_lines', 'usage_records', 'ledger_transactions', 'balances']) {
      await queryRunner.query(`DROP TABLE IF EXISTS ${s}.${table}`);
    }
  }
}

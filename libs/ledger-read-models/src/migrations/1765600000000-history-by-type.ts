import type { MigrationInterface, QueryRunner } from 'typeorm';
import { schemaOf } from './migration-schema';

/**
 * An account's history entries other than usage debits, by type: a page filtered to grants (or expiries, holds,
 * corrections...) and a void's lookup of the grant it corrects read those entries, not every usage row of the account
 * (300,000 usage rows: 300,003 rows fetched for a page of 3 grants before, see history-scale.int.spec.ts). Partial, so
 * a usage debit, almost every row written, adds no entry to it and the projection's hot path pays nothing.
 * Built inside the migration's transaction, holding the table's writes for as long as the build takes (about a second
 * per million non-usage rows).
 */
export class HistoryByType1765600000000 implements MigrationInterface {
  readonly name = 'HistoryByType1765600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    await queryRunner.query(
      `CREATE INDEX IF NOT EXISTS ledger_transactions_account_type_idx ON ${s}.ledger_transactions (account_id, type, stream_version) WHERE type <> 'UsageDebited'`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS ${schemaOf(queryRunner)}.ledger_transactions_account_type_idx`);
  }
}

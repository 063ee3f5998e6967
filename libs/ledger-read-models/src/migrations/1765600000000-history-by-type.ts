import type { MigrationInterface, QueryRunner } from 'typeorm';
import { createIndexConcurrently } from '@tally/shared';
import { schemaOf } from './schema-name.migration';

const INDEX = 'ledger_transactions_account_type_idx';

/**
 * An account's history entries other than usage debits, by type: a page filtered to grants (or expiries, holds,
 * corrections...) and a void's lookup of the grant it corrects read those entries, not every usage row of the account
 * (300,000 usage rows: 300,003 rows fetched for a page of 3 grants before, see history-scale.int.spec.ts). Partial, so
 * a usage debit, almost every row written, adds no entry to it and the projection's hot path pays nothing.
 *
 * Built CONCURRENTLY, outside a transaction (`transaction = false`, `createIndexConcurrently`; the ledger runs its
 * migrations one transaction each, so only this one is left out): a plain CREATE INDEX would hold the projection's
 * writes, and with them every balance, for as long as it reads a large table.
 */
export class HistoryByType1765600000000 implements MigrationInterface {
  readonly name = 'HistoryByType1765600000000';
  readonly transaction = false;

  async up(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    await createIndexConcurrently(queryRunner, s, INDEX, `ledger_transactions (account_id, type, stream_version) WHERE type <> 'UsageDebited'`);
  }

  /** A plain DROP INDEX (quick): TypeORM undoes a migration in a transaction whatever its `transaction`, and CONCURRENTLY cannot run in one. */
  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS ${schemaOf(queryRunner)}.${INDEX}`);
  }
}

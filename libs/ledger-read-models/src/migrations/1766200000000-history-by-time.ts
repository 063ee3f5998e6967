import type { MigrationInterface, QueryRunner } from 'typeorm';
import { createIndexConcurrently } from '@tally/shared';
import { schemaOf } from './schema-name.migration';

const INDEX = 'ledger_transactions_account_time_idx';
const REPLACED = 'ledger_transactions_account_occurred_idx';

/**
 * An account's history in time order to the last key: a page asked with `from` or `to` is read newest first by
 * (occurred_at, stream_version), and this index gives that very order, so the page reads its own rows whatever the
 * planner believes of the table (with stale statistics, `(account_id, occurred_at)` alone had it sort the whole
 * window: 300,000 rows for a page of 20). It replaces that index, of which it is an extension.
 *
 * Built CONCURRENTLY, outside a transaction (`createIndexConcurrently`); the old index goes after the new one is
 * valid, concurrently too.
 */
export class HistoryByTime1766200000000 implements MigrationInterface {
  readonly name = 'HistoryByTime1766200000000';
  readonly transaction = false;

  async up(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    await createIndexConcurrently(queryRunner, s, INDEX, 'ledger_transactions (account_id, occurred_at, stream_version)');
    await queryRunner.query(`DROP INDEX CONCURRENTLY IF EXISTS ${s}.${REPLACED}`);
  }

  /** Plain statements (quick enough for an undo): TypeORM undoes a migration in a transaction whatever its `transaction`. */
  async down(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS ${REPLACED} ON ${s}.ledger_transactions (account_id, occurred_at)`);
    await queryRunner.query(`DROP INDEX IF EXISTS ${s}.${INDEX}`);
  }
}

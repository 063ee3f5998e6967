import type { MigrationInterface, QueryRunner } from 'typeorm';

const INDEX = 'accepted_usage_accepted_at_idx';

/**
 * Accepted usage by age, for the retention worker (accepted-usage-retention.worker.ts) to delete what is older than
 * ACCEPTED_USAGE_RETENTION_DAYS without scanning the table. Its values grow with time, so each insert goes to the
 * index's right-most page.
 *
 * Built CONCURRENTLY, outside a transaction (`transaction = false`; usage-ingest runs its migrations one transaction
 * each): a plain CREATE INDEX would hold every usage report for as long as it reads a large table. A build interrupted
 * half-way leaves an invalid index that IF NOT EXISTS would keep, so such a leftover is dropped first.
 */
export class AcceptedUsageAge1766000000000 implements MigrationInterface {
  readonly name = 'AcceptedUsageAge1766000000000';
  readonly transaction = false;

  async up(runner: QueryRunner): Promise<void> {
    const schema = runner.connection.driver.schema ?? 'public';
    await runner.query(
      `DO $$ BEGIN
         IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('"${schema}".${INDEX}') AND NOT indisvalid) THEN
           DROP INDEX "${schema}".${INDEX};
         END IF;
       END $$`,
    );
    await runner.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${INDEX} ON "${schema}".accepted_usage (accepted_at)`);
  }

  /** A plain DROP INDEX (quick): TypeORM undoes a migration in a transaction whatever its `transaction`, and CONCURRENTLY cannot run in one. */
  async down(runner: QueryRunner): Promise<void> {
    const schema = runner.connection.driver.schema ?? 'public';
    await runner.query(`DROP INDEX IF EXISTS "${schema}".${INDEX}`);
  }
}

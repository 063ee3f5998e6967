import type { MigrationInterface, QueryRunner } from 'typeorm';
import { createIndexConcurrently } from '@tally/shared';

const INDEX = 'accepted_usage_accepted_at_idx';

/**
 * Accepted usage by age, for the retention worker (accepted-usage-retention.worker.ts) to delete what is older than
 * ACCEPTED_USAGE_RETENTION_DAYS without scanning the table. Its values grow with time, so each insert goes to the
 * index's right-most page.
 *
 * Built CONCURRENTLY, outside a transaction (`transaction = false`, `createIndexConcurrently`; usage-ingest runs its
 * migrations one transaction each): a plain CREATE INDEX would hold every usage report for as long as it reads a large
 * table.
 */
export class AcceptedUsageAge1766000000000 implements MigrationInterface {
  readonly name = 'AcceptedUsageAge1766000000000';
  readonly transaction = false;

  async up(runner: QueryRunner): Promise<void> {
    const schema = runner.connection.driver.schema ?? 'public';
    await createIndexConcurrently(runner, `"${schema}"`, INDEX, 'accepted_usage (accepted_at)');
  }

  /** A plain DROP INDEX (quick): TypeORM undoes a migration in a transaction whatever its `transaction`, and CONCURRENTLY cannot run in one. */
  async down(runner: QueryRunner): Promise<void> {
    const schema = runner.connection.driver.schema ?? 'public';
    await runner.query(`DROP INDEX IF EXISTS "${schema}".${INDEX}`);
  }
}

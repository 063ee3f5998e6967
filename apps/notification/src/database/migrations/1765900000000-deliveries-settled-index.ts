import type { MigrationInterface, QueryRunner } from 'typeorm';
import { isSqlIdentifier } from '@tally/shared';

/**
 * Settled deliveries (delivered, failed, cancelled) by when they settled: the retention purge (DELIVERY_RETENTION_DAYS)
 * finds the old ones without reading the table.
 */
export function createDeliveriesSettledIndexMigration(schema: string): new () => MigrationInterface {
  if (!isSqlIdentifier(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema)}`);
  const s = `"${schema}"`;
  return class DeliveriesSettledIndex1765900000000 implements MigrationInterface {
    name = 'DeliveriesSettledIndex1765900000000';

    async up(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(`CREATE INDEX IF NOT EXISTS deliveries_settled ON ${s}.deliveries (updated_at) WHERE state <> 'pending'`);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(`DROP INDEX IF EXISTS ${s}.deliveries_settled`);
    }
  };
}

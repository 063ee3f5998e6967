import type { MigrationInterface, QueryRunner } from 'typeorm';
import { schemaOf } from './schema-name.migration';

/**
 * Corrections in the usage read model: `refunded` (micro-credits given back by UsageRefunded) on each usage record and
 * model line, so usage totals and the export count credits net of refunds; `last_refund_version`, the stream version
 * of the last refund a record took, so a redelivered refund is not taken twice.
 */
export class UsageRefunds1765100000000 implements MigrationInterface {
  readonly name = 'UsageRefunds1765100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    await queryRunner.query(`ALTER TABLE ${s}.usage_records ADD COLUMN IF NOT EXISTS refunded bigint NOT NULL DEFAULT 0`);
    await queryRunner.query(`ALTER TABLE ${s}.usage_records ADD COLUMN IF NOT EXISTS last_refund_version integer NOT NULL DEFAULT 0`);
    await queryRunner.query(`ALTER TABLE ${s}.usage_lines ADD COLUMN IF NOT EXISTS refunded bigint NOT NULL DEFAULT 0`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    await queryRunner.query(`ALTER TABLE ${s}.usage_lines DROP COLUMN IF EXISTS refunded`);
    await queryRunner.query(`ALTER TABLE ${s}.usage_records DROP COLUMN IF EXISTS last_refund_version`);
    await queryRunner.query(`ALTER TABLE ${s}.usage_records DROP COLUMN IF EXISTS refunded`);
  }
}

import type { MigrationInterface, QueryRunner } from 'typeorm';
import { schemaOf } from '../schema.migration';

/**
 * When the scheduler parked a subscription it could not tick (its plan not in the catalogue, say) and why, until a
 * tick or a command saves it again: the parked ones are counted in /metrics (tally_subscriptions_parked). Null for
 * every row before this column, none of which is parked as far as anyone can tell.
 */
export class SubscriptionsParked1766100000000 implements MigrationInterface {
  readonly name = 'SubscriptionsParked1766100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const table = `${schemaOf(queryRunner)}.subscriptions`;
    await queryRunner.query(`ALTER TABLE ${table} ADD COLUMN parked_at timestamptz, ADD COLUMN parked_reason text`);
    // Parked rows are few: the metric reads them through this index, not the whole table.
    await queryRunner.query(`CREATE INDEX subscriptions_parked_at_idx ON ${table} (parked_at) WHERE parked_at IS NOT NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const table = `${schemaOf(queryRunner)}.subscriptions`;
    await queryRunner.query(`DROP INDEX IF EXISTS ${schemaOf(queryRunner)}.subscriptions_parked_at_idx`);
    await queryRunner.query(`ALTER TABLE ${table} DROP COLUMN IF EXISTS parked_reason, DROP COLUMN IF EXISTS parked_at`);
  }
}

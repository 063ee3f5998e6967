import type { MigrationInterface, QueryRunner } from 'typeorm';
import { schemaOf } from '../schema.migration';

/**
 * The first cycle (under the current anchor) on the subscription's current plan: a yearly plan is left when its paid
 * year ends, and its years count from that cycle. Rows before this column get 0, the anchor's cycle: right for every
 * plan held since a subscription or an upgrade; a yearly plan reached by a scheduled downgrade counts its years from
 * the anchor instead (its year may then end up to 11 months early, as every yearly plan's did before).
 */
export class PlanFromCycle1766300000000 implements MigrationInterface {
  readonly name = 'PlanFromCycle1766300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE ${schemaOf(queryRunner)}.subscriptions ADD COLUMN plan_from_cycle integer NOT NULL DEFAULT 0`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE ${schemaOf(queryRunner)}.subscriptions DROP COLUMN IF EXISTS plan_from_cycle`);
  }
}

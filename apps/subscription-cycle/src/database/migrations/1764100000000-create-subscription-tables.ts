import type { MigrationInterface, QueryRunner } from 'typeorm';
import { schemaOf } from '../schema.migration';

/** Subscriptions and the outbox, in the schema the DataSource is configured with (DATABASE_SCHEMA). */
export class CreateSubscriptionTables1764100000000 implements MigrationInterface {
  readonly name = 'CreateSubscriptionTables1764100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    await queryRunner.query(`
      CREATE TABLE ${s}.subscriptions (
        account_id varchar(128) PRIMARY KEY,
        plan_id varchar(64) NOT NULL,
        time_zone varchar(64) NOT NULL,
        anchor timestamptz NOT NULL,
        last_cycle_index integer NOT NULL,
        pending_plan_id varchar(64),
        pending_kind varchar(16) CHECK (pending_kind IN ('downgrade', 'cancel')),
        pending_effective_at timestamptz,
        next_due_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((pending_plan_id IS NULL) = (pending_kind IS NULL) AND (pending_kind IS NULL) = (pending_effective_at IS NULL))
      )`);
    await queryRunner.query(`CREATE INDEX subscriptions_next_due_at_idx ON ${s}.subscriptions (next_due_at) WHERE next_due_at IS NOT NULL`);
    await queryRunner.query(`
      CREATE TABLE ${s}.outbox_messages (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        message_id varchar(128) NOT NULL UNIQUE,
        topic varchar(249) NOT NULL,
        account_id varchar(128) NOT NULL,
        type varchar(64) NOT NULL,
        envelope jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        published_at timestamptz
      )`);
    await queryRunner.query(`CREATE INDEX outbox_messages_unpublished_idx ON ${s}.outbox_messages (id) WHERE published_at IS NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    await queryRunner.query(`DROP TABLE IF EXISTS ${s}.outbox_messages`);
    await queryRunner.query(`DROP TABLE IF EXISTS ${s}.subscriptions`);
  }
}

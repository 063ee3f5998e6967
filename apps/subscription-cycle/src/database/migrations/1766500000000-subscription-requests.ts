import type { MigrationInterface, QueryRunner } from 'typeorm';
import { schemaOf } from '../schema.migration';

/**
 * The answers of PUT and DELETE subscription requests that carried an Idempotency-Key, per account: a retry under the
 * key gets the first answer instead of deciding again (a PUT retried after a later cancel undid the cancel).
 * `request` is the request's canonical form, so the key used with another request is refused. Deleted after
 * IDEMPOTENCY_KEY_RETENTION_DAYS, by created_at.
 */
export class SubscriptionRequests1766500000000 implements MigrationInterface {
  readonly name = 'SubscriptionRequests1766500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    await queryRunner.query(`
      CREATE TABLE ${s}.subscription_requests (
        account_id varchar(128) NOT NULL,
        idempotency_key varchar(128) NOT NULL,
        request text NOT NULL,
        response jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (account_id, idempotency_key)
      )`);
    await queryRunner.query(`CREATE INDEX subscription_requests_created_at_idx ON ${s}.subscription_requests (created_at)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS ${schemaOf(queryRunner)}.subscription_requests`);
  }
}

import type { MigrationInterface, QueryRunner } from 'typeorm';
import { schemaOf } from '../schema.migration';

/**
 * The trace context (W3C traceparent / tracestate) and request id of the work that queued an outbox message, so
 * the relay publishes it with those Kafka headers and the ledger continues the same trace. Null for messages
 * queued before this column, or by work that carried neither.
 */
export class AddOutboxTrace1764900000000 implements MigrationInterface {
  readonly name = 'AddOutboxTrace1764900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE ${schemaOf(queryRunner)}.outbox_messages ADD COLUMN trace jsonb`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE ${schemaOf(queryRunner)}.outbox_messages DROP COLUMN IF EXISTS trace`);
  }
}

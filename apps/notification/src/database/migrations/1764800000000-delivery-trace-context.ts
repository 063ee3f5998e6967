import type { MigrationInterface, QueryRunner } from 'typeorm';
import { isSqlIdentifier } from '@tally/shared';

/**
 * The trace context and request id of the ledger event a delivery was decided for (`{traceparent, tracestate,
 * requestId}`, null when the event carried none): the dispatcher's attempts, however much later, continue that trace
 * and log with that request id.
 */
export function createDeliveryTraceContextMigration(schema: string): new () => MigrationInterface {
  if (!isSqlIdentifier(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema)}`);
  const s = `"${schema}"`;
  return class DeliveryTraceContext1764800000000 implements MigrationInterface {
    name = 'DeliveryTraceContext1764800000000';

    async up(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(`ALTER TABLE ${s}.deliveries ADD COLUMN IF NOT EXISTS trace_context jsonb`);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(`ALTER TABLE ${s}.deliveries DROP COLUMN IF EXISTS trace_context`);
    }
  };
}

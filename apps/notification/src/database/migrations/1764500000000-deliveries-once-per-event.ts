import type { MigrationInterface, QueryRunner } from 'typeorm';
import { isSqlIdentifier } from '@tally/shared';


/**
 * Threshold and depletion alerts are now keyed by the ledger event that announced them (a re-armed threshold
 * crossed again is a new event, so a new alert). Rows written before keep their per-cycle dedupe keys, which stay
 * valid; this key makes a re-published event that was recorded under an old key a no-op too. It cannot fail on
 * existing rows: an event id always yielded one dedupe key per type, so one row per (event, type, channel).
 */
export function createDeliveriesOncePerEventMigration(schema: string): new () => MigrationInterface {
  if (!isSqlIdentifier(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema)}`);
  const s = `"${schema}"`;
  return class DeliveriesOncePerEvent1764500000000 implements MigrationInterface {
    name = 'DeliveriesOncePerEvent1764500000000';

    async up(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(
        `CREATE UNIQUE INDEX IF NOT EXISTS deliveries_once_per_event ON ${s}.deliveries (account_id, event_id, notification_type, channel)`,
      );
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(`DROP INDEX IF EXISTS ${s}.deliveries_once_per_event`);
    }
  };
}

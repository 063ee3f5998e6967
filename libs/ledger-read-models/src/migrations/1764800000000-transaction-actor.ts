import type { MigrationInterface, QueryRunner } from 'typeorm';
import { schemaOf } from './schema-name.migration';

/**
 * Who did what in the transaction history: `actor`, the name of the API key that sent the command (null for events
 * recorded before the audit trail, and for those no key asked for, e.g. subscription events).
 */
export class TransactionActor1764800000000 implements MigrationInterface {
  readonly name = 'TransactionActor1764800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE ${schemaOf(queryRunner)}.ledger_transactions ADD COLUMN IF NOT EXISTS actor varchar(64)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE ${schemaOf(queryRunner)}.ledger_transactions DROP COLUMN IF EXISTS actor`);
  }
}

import type { QueryRunner } from 'typeorm';
import { quoteIdentifier } from '@tally/shared';

/** The read models' schema, quoted: the one the DataSource running the migration is configured with. */
export function schemaOf(queryRunner: QueryRunner): string {
  const schema = (queryRunner.connection.driver as { schema?: string }).schema;
  if (!schema) throw new Error('the ledger DataSource must be configured with a schema (DATABASE_SCHEMA)');
  return quoteIdentifier(schema);
}

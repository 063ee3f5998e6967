import type { MigrationInterface, QueryRunner } from 'typeorm';
import { quoteIdentifier } from './sql-identifier.parser';

/**
 * A TypeORM migration class that runs fixed statements up and down. TypeORM wants classes, not instances, so a
 * migration whose SQL depends on configuration (the schema it goes in) is a class built per value. `name` is what
 * TypeORM records: it must carry that value (two schemas in one database record two rows) and end with the 13-digit
 * timestamp TypeORM orders migrations by.
 */
export function sqlMigration(name: string, up: readonly string[], down: readonly string[]): new () => MigrationInterface {
  return class SqlMigration implements MigrationInterface {
    readonly name = name;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const sql of up) await queryRunner.query(sql);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      for (const sql of down) await queryRunner.query(sql);
    }
  };
}

/**
 * Builds `index` (in `schema`, already quoted) with CREATE INDEX CONCURRENTLY, from a migration that runs outside a
 * transaction (`transaction = false`): a plain CREATE INDEX would hold the table's writes for as long as it reads a
 * large table. A build interrupted half-way (a deploy killed mid-migration) leaves an invalid index that IF NOT EXISTS
 * would keep, so such a leftover is dropped first. A concurrent build also waits for every older transaction of the
 * database to end: a long one elsewhere delays the migration, and the first start of the version bringing it. The
 * drop of a leftover takes the table's exclusive lock, under the migration session's lock timeout.
 */
export async function createIndexConcurrently(queryRunner: QueryRunner, schema: string, index: string, definition: string): Promise<void> {
  await queryRunner.query(
    `DO $$ BEGIN
       IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('${schema}.${index}') AND NOT indisvalid) THEN
         DROP INDEX ${schema}.${index};
       END IF;
     END $$`,
  );
  // No lock timeout for the build (the migration session's would fail it): it takes only a lock writes do not wait
  // for, and waiting for older transactions to end is part of building concurrently.
  await queryRunner.query('SET lock_timeout = 0');
  try {
    await queryRunner.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${index} ON ${schema}.${definition}`);
  } finally {
    await queryRunner.query('RESET lock_timeout');
  }
}

/**
 * The schema the DataSource running a migration is configured with (DATABASE_SCHEMA), quoted, for a migration class
 * written once for any schema; `service` names the DataSource in the error when it has none.
 */
export function migrationSchema(queryRunner: QueryRunner, service: string): string {
  const schema = (queryRunner.connection.driver as { schema?: string }).schema;
  if (!schema) throw new Error(`the ${service} DataSource must be configured with a schema (DATABASE_SCHEMA)`);
  return quoteIdentifier(schema);
}

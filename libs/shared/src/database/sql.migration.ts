import type { MigrationInterface, QueryRunner } from 'typeorm';

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

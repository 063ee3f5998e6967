import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An id is reserved before its event is produced (`produced` false until Kafka acknowledged it), so two requests
 * racing with one id and different content cannot both be accepted. Rows from before were all produced.
 */
export class AcceptedUsageProduced1765800000000 implements MigrationInterface {
  name = 'AcceptedUsageProduced1765800000000';

  async up(runner: QueryRunner): Promise<void> {
    const schema = runner.connection.driver.schema ?? 'public';
    await runner.query(`alter table "${schema}".accepted_usage add column if not exists produced boolean not null default true`);
  }

  async down(runner: QueryRunner): Promise<void> {
    const schema = runner.connection.driver.schema ?? 'public';
    await runner.query(`alter table "${schema}".accepted_usage drop column if exists produced`);
  }
}

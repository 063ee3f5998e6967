import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An id is reserved before its event is produced, by a request (`accepted_usage.request_id`) whose row in
 * `ingest_requests` stays until Kafka acknowledged its events: a reservation whose request row is there is not
 * produced yet (a request in flight, or one whose produce failed). So two requests racing with one id and different
 * content cannot both be accepted, and the common path writes one row per usage, as before. Rows from before have
 * no request: produced.
 */
export class IngestRequests1765800000000 implements MigrationInterface {
  name = 'IngestRequests1765800000000';

  async up(runner: QueryRunner): Promise<void> {
    const schema = runner.connection.driver.schema ?? 'public';
    await runner.query(`alter table "${schema}".accepted_usage add column if not exists request_id uuid`);
    await runner.query(`create table if not exists "${schema}".ingest_requests (
      request_id uuid primary key,
      started_at timestamptz not null default now()
    )`);
  }

  async down(runner: QueryRunner): Promise<void> {
    const schema = runner.connection.driver.schema ?? 'public';
    await runner.query(`drop table if exists "${schema}".ingest_requests`);
    await runner.query(`alter table "${schema}".accepted_usage drop column if exists request_id`);
  }
}

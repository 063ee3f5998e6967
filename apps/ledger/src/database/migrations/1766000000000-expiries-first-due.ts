import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * When a row of the expiry schedule first came due (expiry/expiry.schedule.ts): kept while the worker holds the row
 * (a claim's lease), looks again at an item its account does not know yet, or waits after a failure, all of which
 * move `due_at`; cleared when the row moves to its item's own time. The grace for an unknown item and the backlog
 * metric count from it. Null for rows not taken yet.
 */
export class ExpiriesFirstDue1766000000000 implements MigrationInterface {
  name = 'ExpiriesFirstDue1766000000000';

  async up(runner: QueryRunner): Promise<void> {
    const s = `"${runner.connection.driver.schema ?? 'public'}"`;
    await runner.query(`alter table ${s}.expiries add column if not exists first_due_at timestamptz`);
    await runner.query(`create index if not exists expiries_first_due on ${s}.expiries (first_due_at) where first_due_at is not null`);
  }

  async down(runner: QueryRunner): Promise<void> {
    const s = `"${runner.connection.driver.schema ?? 'public'}"`;
    await runner.query(`drop index if exists ${s}.expiries_first_due`);
    await runner.query(`alter table ${s}.expiries drop column if exists first_due_at`);
  }
}

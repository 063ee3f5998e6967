import type { MigrationInterface, QueryRunner } from 'typeorm';
import { ACCOUNT_STREAM_PREFIX } from '../../accounts/account-event.codec';

/**
 * When each open hold may expire (see holds/hold-expiry.schedule.ts), so the ledger releases it by itself.
 * Filled with the holds still open in the PostgreSQL event store (none with EventStoreDB: those holds are
 * released by the next command on their account, as before).
 */
export class HoldExpiries1764500000000 implements MigrationInterface {
  name = 'HoldExpiries1764500000000';

  async up(runner: QueryRunner): Promise<void> {
    const s = `"${runner.connection.driver.schema ?? 'public'}"`;
    await runner.query(`create table if not exists ${s}.hold_expiries (
      account_id text not null,
      hold_id text not null,
      expires_at timestamptz not null,
      primary key (account_id, hold_id)
    )`);
    await runner.query(`create index if not exists hold_expiries_due on ${s}.hold_expiries (expires_at)`);
    await runner.query(
      `insert into ${s}.hold_expiries (account_id, hold_id, expires_at)
       select substr(placed.stream_id, length($1) + 1), placed.data->>'holdId', (placed.data->>'expiresAt')::timestamptz
       from ${s}.events placed
       where placed.type = 'HoldPlaced' and starts_with(placed.stream_id, $1)
         and not exists (
           select 1 from ${s}.events resolved
           where resolved.stream_id = placed.stream_id and resolved.version > placed.version
             and resolved.type in ('HoldReleased', 'HoldSettled') and resolved.data->>'holdId' = placed.data->>'holdId')
       on conflict do nothing`,
      [ACCOUNT_STREAM_PREFIX],
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`drop table if exists "${runner.connection.driver.schema ?? 'public'}".hold_expiries`);
  }
}

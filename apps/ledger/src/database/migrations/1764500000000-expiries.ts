import type { MigrationInterface, QueryRunner } from 'typeorm';
import { ACCOUNT_STREAM_PREFIX } from '@tally/ledger-events';

/**
 * When each open hold and each expiring promotional grant of an account is due (see expiry/expiry.schedule.ts),
 * so the ledger releases and expires them by itself. Filled with the holds and expiring grants still open in the
 * PostgreSQL event store (none with EventStoreDB: those are handled by the next command on their account, as before).
 */
export class Expiries1764500000000 implements MigrationInterface {
  name = 'Expiries1764500000000';

  async up(runner: QueryRunner): Promise<void> {
    const s = `"${runner.connection.driver.schema ?? 'public'}"`;
    await runner.query(`create table if not exists ${s}.expiries (
      account_id text not null,
      kind text not null check (kind in ('hold', 'credits')),
      item_id text not null,
      due_at timestamptz not null,
      primary key (account_id, kind, item_id)
    )`);
    await runner.query(`create index if not exists expiries_due on ${s}.expiries (due_at)`);
    await runner.query(
      `insert into ${s}.expiries (account_id, kind, item_id, due_at)
       select substr(placed.stream_id, length($1) + 1), 'hold', placed.data->>'holdId', (placed.data->>'expiresAt')::timestamptz
       from ${s}.events placed
       where placed.type = 'HoldPlaced' and starts_with(placed.stream_id, $1)
         and not exists (
           select 1 from ${s}.events resolved
           where resolved.stream_id = placed.stream_id and resolved.version > placed.version
             and resolved.type in ('HoldReleased', 'HoldSettled') and resolved.data->>'holdId' = placed.data->>'holdId')
       on conflict do nothing`,
      [ACCOUNT_STREAM_PREFIX],
    );
    await runner.query(
      `insert into ${s}.expiries (account_id, kind, item_id, due_at)
       select substr(granted.stream_id, length($1) + 1), 'credits', granted.data->>'bucketId', (granted.data->>'expiresAt')::timestamptz
       from ${s}.events granted
       where granted.type = 'CreditsGranted' and starts_with(granted.stream_id, $1)
         and granted.data->>'kind' = 'promotional' and granted.data ? 'expiresAt'
         and not exists (
           select 1 from ${s}.events expired
           where expired.stream_id = granted.stream_id and expired.version > granted.version
             and expired.type = 'CreditsExpired' and expired.data->>'bucketId' = granted.data->>'bucketId')
       on conflict do nothing`,
      [ACCOUNT_STREAM_PREFIX],
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`drop table if exists "${runner.connection.driver.schema ?? 'public'}".expiries`);
  }
}

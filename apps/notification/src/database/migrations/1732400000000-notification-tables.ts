import type { MigrationInterface, QueryRunner } from 'typeorm';
import { isSqlIdentifier } from '@tally/shared';


/** The service's tables in `schema` (configurable, so each test file gets its own). */
export function createNotificationTablesMigration(schema: string): new () => MigrationInterface {
  if (!isSqlIdentifier(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema)}`);
  const s = `"${schema}"`;
  return class NotificationTables1732400000000 implements MigrationInterface {
    name = 'NotificationTables1732400000000';

    async up(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await queryRunner.query(`
        CREATE TABLE ${s}.notification_settings (
          account_id text PRIMARY KEY,
          email text,
          webhook_url text,
          webhook_secret text,
          preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        )`);
      await queryRunner.query(`
        CREATE TABLE ${s}.account_cycles (
          account_id text PRIMARY KEY,
          cycle_id text NOT NULL,
          period_start timestamptz NOT NULL,
          period_end timestamptz NOT NULL,
          allocation text NOT NULL
        )`);
      await queryRunner.query(`
        CREATE TABLE ${s}.deliveries (
          id uuid PRIMARY KEY,
          notification_id text NOT NULL,
          account_id text NOT NULL,
          notification_type text NOT NULL,
          dedupe_key text NOT NULL,
          channel text NOT NULL CHECK (channel IN ('email', 'webhook')),
          event_id text NOT NULL,
          content jsonb NOT NULL,
          state text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
          attempts integer NOT NULL DEFAULT 0,
          attempt_log jsonb NOT NULL DEFAULT '[]'::jsonb,
          last_error text,
          next_attempt_at timestamptz,
          give_up_at timestamptz NOT NULL,
          created_at timestamptz NOT NULL,
          updated_at timestamptz NOT NULL,
          delivered_at timestamptz,
          CONSTRAINT deliveries_once UNIQUE (account_id, notification_type, dedupe_key, channel)
        )`);
      await queryRunner.query(`CREATE INDEX deliveries_due ON ${s}.deliveries (next_attempt_at) WHERE state = 'pending'`);
      await queryRunner.query(`CREATE INDEX deliveries_by_account ON ${s}.deliveries (account_id, created_at DESC, id)`);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(`DROP TABLE IF EXISTS ${s}.deliveries`);
      await queryRunner.query(`DROP TABLE IF EXISTS ${s}.account_cycles`);
      await queryRunner.query(`DROP TABLE IF EXISTS ${s}.notification_settings`);
    }
  };
}

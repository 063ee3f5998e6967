import { Client } from 'pg';
import { DataSource, type MigrationInterface } from 'typeorm';
import { serviceSession } from '@tally/shared';
import { createEventStoreMigration, createStreamsLastWriterMigration } from '@tally/event-store';
import { createKafkaOffsetsMigration } from '@tally/kafka';
import type { LedgerConfig } from '../config/ledger.config';
import { RelayCheckpoints1763700001000 } from './migrations/1763700001000-relay-checkpoints';
import { Expiries1764500000000 } from './migrations/1764500000000-expiries';
import { AccountSnapshots1764600000000 } from './migrations/1764600000000-account-snapshots';

/**
 * The ledger's schema: event store, consumer offsets, relay checkpoint and the read models, all created by
 * migrations (never `synchronize`). Read-model migrations are passed in by the module that owns them.
 */
export function createLedgerDataSource(config: LedgerConfig, readModelMigrations: (new () => MigrationInterface)[] = []): DataSource {
  return new DataSource({
    type: 'postgres',
    extra: serviceSession('ledger-migrations'),
    url: config.DATABASE_URL,
    schema: config.DATABASE_SCHEMA,
    migrations: [
      createEventStoreMigration(config.DATABASE_SCHEMA),
      createKafkaOffsetsMigration(config.DATABASE_SCHEMA),
      RelayCheckpoints1763700001000,
      ...readModelMigrations,
      Expiries1764500000000,
      AccountSnapshots1764600000000,
      createStreamsLastWriterMigration(config.DATABASE_SCHEMA),
    ],
    migrationsTableName: 'typeorm_migrations',
    synchronize: false,
  });
}

/**
 * Creates the schema if needed and applies pending migrations (idempotent). Replicas booting together take
 * turns: a session advisory lock keyed by the schema is held while one of them migrates.
 */
export async function migrateLedger(config: LedgerConfig, readModelMigrations: (new () => MigrationInterface)[] = []): Promise<void> {
  const lock = new Client({ connectionString: config.DATABASE_URL, ...serviceSession('ledger-migrations') });
  await lock.connect();
  const key = [config.DATABASE_SCHEMA];
  try {
    await lock.query(`select pg_advisory_lock(hashtext('tally-ledger-migrations'), hashtext($1))`, key);
    const db = await createLedgerDataSource(config, readModelMigrations).initialize();
    try {
      await db.query(`create schema if not exists "${config.DATABASE_SCHEMA}"`);
      await db.runMigrations({ transaction: 'each' });
    } finally {
      await db.destroy();
    }
  } finally {
    await lock.query(`select pg_advisory_unlock(hashtext('tally-ledger-migrations'), hashtext($1))`, key).catch(() => undefined);
    await lock.end();
  }
}

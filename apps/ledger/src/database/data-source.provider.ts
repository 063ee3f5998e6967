import { DataSource, type MigrationInterface } from 'typeorm';
import { migrateTakingTurns, migrationSession } from '@tally/shared';
import { createEventStoreMigration, createStreamsLastWriterMigration } from '@tally/event-store';
import { createKafkaOffsetsMigration } from '@tally/kafka';
import type { LedgerConfig } from '../config/ledger.config';
import { RelayCheckpoints1763700001000 } from './migrations/1763700001000-relay-checkpoints';
import { Expiries1764500000000 } from './migrations/1764500000000-expiries';
import { AccountSnapshots1764600000000 } from './migrations/1764600000000-account-snapshots';
import { ExpiriesFirstDue1766000000000 } from './migrations/1766000000000-expiries-first-due';
import { AccountSnapshotsEventId1767000000000 } from './migrations/1767000000000-account-snapshots-event-id';

/**
 * The ledger's schema: event store, consumer offsets, relay checkpoint and the read models, all created by
 * migrations (never `synchronize`). Read-model migrations are passed in by the module that owns them.
 */
export function createLedgerDataSource(config: LedgerConfig, readModelMigrations: (new () => MigrationInterface)[] = []): DataSource {
  return new DataSource({
    type: 'postgres',
    extra: migrationSession('ledger'),
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
      ExpiriesFirstDue1766000000000,
      AccountSnapshotsEventId1767000000000,
    ],
    migrationsTableName: 'typeorm_migrations',
    synchronize: false,
  });
}

/**
 * Creates the schema if needed and applies pending migrations (idempotent), replicas taking turns
 * (migrateTakingTurns; the ledger-migrations data source has no statement timeout).
 */
export async function migrateLedger(config: LedgerConfig, readModelMigrations: (new () => MigrationInterface)[] = []): Promise<void> {
  await migrateTakingTurns({
    url: config.DATABASE_URL,
    service: 'ledger',
    schema: config.DATABASE_SCHEMA,
    dataSource: () => createLedgerDataSource(config, readModelMigrations),
  });
}

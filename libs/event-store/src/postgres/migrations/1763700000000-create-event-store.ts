import type { MigrationInterface } from 'typeorm';
import { sqlMigration } from '@tally/shared';
import { DEFAULT_EVENT_STORE_SCHEMA, assertSchemaName, eventStoreDownSql, eventStoreUpSql } from '../postgres-schema.migration';

const TIMESTAMP = 1763700000000;

/**
 * Builds the migration class for one schema; add the returned class to the DataSource's `migrations`.
 * A factory rather than reading the QueryRunner's options because the event store schema is the event store's
 * configuration, not the DataSource's. The name embeds the schema so two stores in one database record two rows;
 * it ends with the timestamp because TypeORM orders migrations by the name's last 13 digits.
 */
export function createEventStoreMigration(
  schema: string = DEFAULT_EVENT_STORE_SCHEMA,
): new () => MigrationInterface {
  assertSchemaName(schema);
  return sqlMigration(`CreateEventStore_${schema}_${TIMESTAMP}`, eventStoreUpSql(schema), eventStoreDownSql(schema));
}

/** The migration for the default schema (`event_store`), for DataSources that list classes directly. */
export const CreateEventStore1763700000000 = createEventStoreMigration(DEFAULT_EVENT_STORE_SCHEMA);

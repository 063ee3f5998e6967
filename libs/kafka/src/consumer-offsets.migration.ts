import type { MigrationInterface } from 'typeorm';
import { sqlMigration } from '@tally/shared';
import { offsetsTableDdl, quoteSchema } from './consumer-offsets.repository';

/** Fixed so every app that adopts the table records the same migration timestamp. */
const MIGRATION_TIMESTAMP = 1732147200000;

/**
 * A TypeORM migration class for the consumer offsets table in `schema`, to put in an app's DataSource
 * `migrations` list. TypeORM wants classes, not instances, hence a factory returning a class; the name
 * carries the schema so two schemas in one app do not clash in the migrations table.
 */
export function createKafkaOffsetsMigration(schema: string): new () => MigrationInterface {
  quoteSchema(schema);
  const pascal = schema.replace(/(^|_)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
  // Down: the schema may hold the app's other tables, so only what this migration created.
  return sqlMigration(`KafkaConsumerOffsets${pascal}${MIGRATION_TIMESTAMP}`, offsetsTableDdl(schema), [`DROP TABLE IF EXISTS ${quoteSchema(schema)}.kafka_consumer_offsets`]);
}

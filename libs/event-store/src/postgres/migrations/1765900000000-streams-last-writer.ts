import type { MigrationInterface } from 'typeorm';
import { sqlMigration } from '@tally/shared';
import { DEFAULT_EVENT_STORE_SCHEMA, assertSchemaName, streamsLastWriterDownSql, streamsLastWriterUpSql } from '../postgres-schema.migration';

const TIMESTAMP = 1765900000000;

/**
 * `streams.last_xid` (see streamsLastWriterUpSql), for a store created by CreateEventStore. Adding a NOT NULL column
 * with a constant default rewrites nothing (PostgreSQL 11+). Listed after the store's first migration.
 */
export function createStreamsLastWriterMigration(schema: string = DEFAULT_EVENT_STORE_SCHEMA): new () => MigrationInterface {
  assertSchemaName(schema);
  return sqlMigration(`StreamsLastWriter_${schema}_${TIMESTAMP}`, streamsLastWriterUpSql(schema), streamsLastWriterDownSql(schema));
}

import { DataSource } from 'typeorm';
import { migrateTakingTurns, serviceSession } from '@tally/shared';
import type { UsageIngestConfig } from '../config/usage-ingest.config';
import { AcceptedUsage1763700000000 } from './migrations/1763700000000-accepted-usage';
import { IngestRequests1765800000000 } from './migrations/1765800000000-ingest-requests';
import { AcceptedUsageAge1766000000000 } from './migrations/1766000000000-accepted-usage-age';

/**
 * TypeORM for queries (PG_QUERY_TIMEOUT_MS on each statement) or, `forMigrations`, for migrations (no statement
 * timeout: an index built on a large table takes what it takes); never `synchronize`.
 */
export function createUsageIngestDataSource(config: UsageIngestConfig, { forMigrations = false } = {}): DataSource {
  return new DataSource({
    type: 'postgres',
    url: config.DATABASE_URL,
    schema: config.DATABASE_SCHEMA,
    migrations: [AcceptedUsage1763700000000, IngestRequests1765800000000, AcceptedUsageAge1766000000000],
    migrationsTableName: 'typeorm_migrations',
    synchronize: false,
    extra: forMigrations ? serviceSession('usage-ingest-migrations') : { max: config.poolMax(10), ...serviceSession('usage-ingest', { queryTimeoutMs: config.PG_QUERY_TIMEOUT_MS }) },
  });
}

/** Creates the schema if needed and applies pending migrations, replicas taking turns (migrateTakingTurns). */
export function migrateUsageIngest(config: UsageIngestConfig): Promise<void> {
  return migrateTakingTurns({
    url: config.DATABASE_URL,
    service: 'usage-ingest',
    schema: config.DATABASE_SCHEMA,
    dataSource: () => createUsageIngestDataSource(config, { forMigrations: true }),
  });
}

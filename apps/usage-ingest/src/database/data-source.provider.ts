import { DataSource, type DataSourceOptions } from 'typeorm';
import { migrateServiceTakingTurns, serviceSession } from '@tally/shared';
import type { UsageIngestConfig } from '../config/usage-ingest.config';
import { AcceptedUsage1763700000000 } from './migrations/1763700000000-accepted-usage';
import { IngestRequests1765800000000 } from './migrations/1765800000000-ingest-requests';
import { AcceptedUsageAge1766000000000 } from './migrations/1766000000000-accepted-usage-age';

/** TypeORM options: PG_QUERY_TIMEOUT_MS on each statement; migrations run by migrateUsageIngest; never `synchronize`. */
function usageIngestDataSourceOptions(config: UsageIngestConfig): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.DATABASE_URL,
    schema: config.DATABASE_SCHEMA,
    migrations: [AcceptedUsage1763700000000, IngestRequests1765800000000, AcceptedUsageAge1766000000000],
    migrationsTableName: 'typeorm_migrations',
    synchronize: false,
    extra: { max: config.poolMax(10), ...serviceSession('usage-ingest', config.poolLimits()) },
  };
}

export function createUsageIngestDataSource(config: UsageIngestConfig): DataSource {
  return new DataSource(usageIngestDataSourceOptions(config));
}

/** Creates the schema if needed and applies pending migrations, replicas taking turns (migrateServiceTakingTurns). */
export function migrateUsageIngest(config: UsageIngestConfig): Promise<void> {
  return migrateServiceTakingTurns('usage-ingest', config, usageIngestDataSourceOptions(config));
}

import { createKafkaOffsetsMigration } from '@tally/kafka';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { testDatabaseUrl } from '@tally/testing';
import { LedgerConfig } from '../../src/config/ledger.config';
import { READ_MODEL_ENTITIES, READ_MODEL_MIGRATIONS } from '../../src/read-models';
import { BalanceReadRepository } from '../../src/read-models/balance/balance.repository';
import { TransactionQueryService } from '../../src/read-models/history/transactions.query';
import { LedgerProjection, inTransaction } from '@tally/ledger-read-models';
import type { Envelope } from '@tally/contracts';

/** Runs the read-model migrations (and, if asked, the consumer offsets table) in `schema`, the way the app does. */
export async function migrateReadModels(schema: string, withOffsets = false, url = testDatabaseUrl()): Promise<void> {
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    schema,
    entities: READ_MODEL_ENTITIES,
    migrations: [...(withOffsets ? [createKafkaOffsetsMigration(schema)] : []), ...READ_MODEL_MIGRATIONS],
    migrationsTableName: 'ledger_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
  });
  await dataSource.initialize();
  try {
    await dataSource.runMigrations();
  } finally {
    await dataSource.destroy();
  }
}

export function testConfig(schema: string, overrides: Partial<LedgerConfig> = {}): LedgerConfig {
  return Object.assign(new LedgerConfig(), { DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema, WORKERS: 'none', ...overrides });
}

export const testPool = (url = testDatabaseUrl()): Pool => new Pool({ connectionString: url, max: 6 });

/** The history page service over `schema`, as the app wires it (its balance lookup answers 404 for unknown accounts). */
export const transactionQueries = (pool: Pool, schema: string): TransactionQueryService =>
  new TransactionQueryService(pool, testConfig(schema), new BalanceReadRepository(pool, testConfig(schema)));

/** Applies one batch in its own transaction, as the batch consumer does. */
export async function applyBatch(pool: Pool, schema: string, envelopes: Envelope<object>[]): Promise<void> {
  await inTransaction(pool, (tx) => new LedgerProjection(schema).apply(tx, envelopes));
}

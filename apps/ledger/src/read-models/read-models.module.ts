import type { Provider } from '@nestjs/common';
import { LedgerConfig } from '../config/ledger.config';
import { LedgerProjection } from './ledger.projection';
import { ProjectionConsumer } from './projection.consumer';

/**
 * Providers for the root module to spread in. They expect PG_POOL, KAFKA_CLIENT, KafkaProducer and
 * LedgerConfig from the root module; the read-model migration (READ_MODEL_MIGRATIONS) and the consumer
 * offsets table of DATABASE_SCHEMA must be in the ledger DataSource's migrations.
 */
export const READ_MODEL_PROVIDERS: Provider[] = [
  { provide: LedgerProjection, inject: [LedgerConfig], useFactory: (config: LedgerConfig) => new LedgerProjection(config.DATABASE_SCHEMA) },
  ProjectionConsumer,
];

import { CreateReadModels1764300000000 } from './migrations/1764300000000-create-read-models';

export * from './read-model.entities';
export * from './ledger-event.rows';
export * from './ledger.projection';
export * from './projection.kafka.controller';
export * from './rebuild-read-models';
export * from './read-models.module';
export { CreateReadModels1764300000000 };

/** Add to the ledger DataSource's `migrations` (after the consumer offsets migration of DATABASE_SCHEMA). */
export const READ_MODEL_MIGRATIONS = [CreateReadModels1764300000000];

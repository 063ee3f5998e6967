import { CreateReadModels1764300000000 } from './migrations/1764300000000-create-read-models';

export * from './read-model.entity';
export * from './ledger-event-rows.codec';
export * from './ledger.projection';
export * from './projection.kafka.controller';
export * from './read-model-rebuild.projection';
export * from './read-models.module';
export { CreateReadModels1764300000000 };

/** Add to the ledger DataSource's `migrations` (after the consumer offsets migration of DATABASE_SCHEMA). */
export const READ_MODEL_MIGRATIONS = [CreateReadModels1764300000000];

export * from './read-model.entity';
export * from './projection.kafka.controller';
export * from './read-models.module';
// The projection, its row codec, the read-model migrations and the rebuild live in libs/ledger-read-models, shared
// with the operator CLI (apps/cli).
export { READ_MODEL_MIGRATIONS } from '@tally/ledger-read-models';

import type { QueryRunner } from 'typeorm';
import { migrationSchema } from '@tally/shared';

/** The read models' schema, quoted: the one the DataSource running the migration is configured with. */
export const schemaOf = (queryRunner: QueryRunner): string => migrationSchema(queryRunner, 'ledger');

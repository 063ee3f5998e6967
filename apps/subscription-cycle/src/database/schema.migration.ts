import type { QueryRunner } from 'typeorm';
import { migrationSchema } from '@tally/shared';

/** The subscription-cycle schema, quoted: the one the DataSource running the migration is configured with. */
export const schemaOf = (queryRunner: QueryRunner): string => migrationSchema(queryRunner, 'subscription-cycle');

import type { QueryRunner } from 'typeorm';

const quote = (identifier: string): string => `"${identifier.replace(/"/g, '""')}"`;

/** The subscription-cycle schema, quoted, from the DataSource a migration runs in. */
export function schemaOf(queryRunner: QueryRunner): string {
  const schema = (queryRunner.connection.options as { schema?: string }).schema;
  if (!schema) throw new Error('the subscription-cycle DataSource must be configured with a schema');
  return quote(schema);
}

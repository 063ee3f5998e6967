import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** Helpers for integration tests that run against the real PostgreSQL and Kafka started by scripts/infra.sh. */
export const testDatabaseUrl = (): string => process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tally_test';
export const testKafkaBrokers = (): string[] => (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

/**
 * The portal-token secret the services tests start get (PORTAL_TOKEN_SECRET; a test may pass its own): tests sign
 * tokens with it to check what the ledger refuses (expired, other audience).
 */
export const TEST_PORTAL_TOKEN_SECRET = 'tally-test-portal-token-secret-0123456789';

/** A short random suffix for topic, group and schema names, so test files never share state. */
export const uniqueSuffix = (): string => randomBytes(4).toString('hex');

/** Creates a fresh schema and returns its name and a function that drops it. */
export async function createTestSchema(prefix: string): Promise<{ schema: string; drop: () => Promise<void> }> {
  const schema = `${prefix}_${uniqueSuffix()}`.toLowerCase();
  const client = new Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  await client.query(`create schema "${schema}"`);
  await client.end();
  return {
    schema,
    drop: async () => {
      const c = new Client({ connectionString: testDatabaseUrl() });
      await c.connect();
      await c.query(`drop schema if exists "${schema}" cascade`);
      await c.end();
    },
  };
}

export { waitFor } from './wait-for.harness';

/** Picks a free TCP port on loopback. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
export * from './service-process.harness';
export * from './private-postgres.harness';
export * from './outage-answers.harness';
export * from './private-kafka.harness';
export * from './openapi-contract.harness';
export * from './json-schema-arbitrary.fixtures';
export * from './openapi-fuzz.fixtures';
export * from './openapi-fuzz.harness';
export * from './ledger-test-env.fixtures';
export * from './module-loads.harness';
export * from './query-plan.harness';
export * from './postgres-session.harness';
export * from './pool-end.harness';

import { hashApiKey } from '../http/api-keys.config';
import { TEST_PORTAL_TOKEN_SECRET, testDatabaseUrl, testKafkaBrokers, uniqueSuffix } from './index';
import { TEST_RATE_LIMITS } from './service-process.harness';

/** An API key a test gives a service: its name, the key itself (only its hash is configured) and its scopes. */
export interface TestApiKey {
  name: string;
  key: string;
  scopes: string[];
}

/**
 * A ledger's environment of its own for one test file: unique topics and consumer groups (so test files never share
 * state), the test database and broker, the test portal-token secret, rate limits out of the way, and `keys` as
 * API_KEYS. `topics` are the six the ledger reads and writes (create them before starting it).
 */
export function ledgerTestEnv(keys: TestApiKey[]): { id: string; env: Record<string, string>; topics: string[] } {
  const id = uniqueSuffix();
  const env: Record<string, string> = {
    ...TEST_RATE_LIMITS,
    DATABASE_URL: testDatabaseUrl(),
    KAFKA_BROKERS: testKafkaBrokers().join(','),
    USAGE_EVENTS_TOPIC: `t.${id}.usage.events.v1`,
    USAGE_DLQ_TOPIC: `t.${id}.usage.events.dlq.v1`,
    SUBSCRIPTION_EVENTS_TOPIC: `t.${id}.subscription.events.v1`,
    SUBSCRIPTION_DLQ_TOPIC: `t.${id}.subscription.events.dlq.v1`,
    LEDGER_EVENTS_TOPIC: `t.${id}.ledger.events.v1`,
    LEDGER_DLQ_TOPIC: `t.${id}.ledger.events.dlq.v1`,
    CONSUMER_GROUP: `ledger-${id}`,
    PROJECTION_GROUP: `projections-${id}`,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    API_KEYS: JSON.stringify(keys.map(({ name, key, scopes }) => ({ name, sha256: hashApiKey(key), scopes }))),
    PORTAL_TOKEN_SECRET: TEST_PORTAL_TOKEN_SECRET,
    // Holds are released at the end of their TTL, so tests of expiry wait seconds, not the default grace's minute;
    // apps/ledger/test/hold-settle-grace.e2e.spec.ts tests the grace.
    HOLD_SETTLE_GRACE_SECONDS: '0',
  };
  const topics = [env.USAGE_EVENTS_TOPIC, env.USAGE_DLQ_TOPIC, env.SUBSCRIPTION_EVENTS_TOPIC, env.SUBSCRIPTION_DLQ_TOPIC, env.LEDGER_EVENTS_TOPIC, env.LEDGER_DLQ_TOPIC];
  return { id, env, topics };
}

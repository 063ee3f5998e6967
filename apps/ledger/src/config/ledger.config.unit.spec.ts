import { ConfigError, loadConfig, redactConfig } from '@tally/shared';
import { LEDGER_WORKERS, LedgerConfig } from './ledger.config';

const base = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/tally', KAFKA_BROKERS: '127.0.0.1:9092' };
/** Whether the config runs commands, relay, projection (in that order). */
const runs = (config: LedgerConfig) => LEDGER_WORKERS.map((worker) => config.runs(worker));

describe('LedgerConfig WORKERS', () => {
  it('runs every worker by default', () => {
    const config = loadConfig(LedgerConfig, base);
    expect(runs(config)).toEqual([true, true, true]);
  });

  it('splits workers over processes: commands and relay in one, the projection in another', () => {
    const deciding = loadConfig(LedgerConfig, { ...base, WORKERS: 'commands,relay' });
    const projecting = loadConfig(LedgerConfig, { ...base, WORKERS: 'projection' });
    expect(runs(deciding)).toEqual([true, true, false]);
    expect(runs(projecting)).toEqual([false, false, true]);
  });

  it('"none" is an HTTP-only instance', () => {
    const config = loadConfig(LedgerConfig, { ...base, WORKERS: 'none' });
    expect(runs(config)).toEqual([false, false, false]);
  });

  it('refuses an unknown worker, naming the variable', () => {
    const error = (() => {
      try {
        loadConfig(LedgerConfig, { ...base, WORKERS: 'commands,projections' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('WORKERS');
  });
});

describe('LedgerConfig EVENT_STORE_TRANSACTIONAL', () => {
  it('shares the consumer transaction by default, and takes the idempotent path when false', () => {
    expect(loadConfig(LedgerConfig, base).EVENT_STORE_TRANSACTIONAL).toBe(true);
    expect(loadConfig(LedgerConfig, { ...base, EVENT_STORE_TRANSACTIONAL: 'false' }).EVENT_STORE_TRANSACTIONAL).toBe(false);
  });

  it('refuses anything but true or false, naming the variable', () => {
    expect(() => loadConfig(LedgerConfig, { ...base, EVENT_STORE_TRANSACTIONAL: 'no' })).toThrow(/EVENT_STORE_TRANSACTIONAL/);
  });
});

describe('LedgerConfig consumer retry and stall thresholds, METRICS_ENABLED', () => {
  it('defaults: backoff up to 30 s, stalled after 5 attempts or 30 s, metrics on', () => {
    const config = loadConfig(LedgerConfig, base);
    expect([config.CONSUMER_RETRY_MAX_MS, config.CONSUMER_STALL_ATTEMPTS, config.CONSUMER_STALL_SECONDS, config.METRICS_ENABLED]).toEqual([30_000, 5, 30, true]);
  });

  it('takes smaller thresholds and metrics off', () => {
    const config = loadConfig(LedgerConfig, { ...base, CONSUMER_RETRY_MAX_MS: '500', CONSUMER_STALL_ATTEMPTS: '2', CONSUMER_STALL_SECONDS: '1', METRICS_ENABLED: 'false' });
    expect([config.CONSUMER_RETRY_MAX_MS, config.CONSUMER_STALL_ATTEMPTS, config.CONSUMER_STALL_SECONDS, config.METRICS_ENABLED]).toEqual([500, 2, 1, false]);
  });

  it('refuses values out of range or not a boolean, naming each variable', () => {
    const error = (() => {
      try {
        loadConfig(LedgerConfig, { ...base, CONSUMER_RETRY_MAX_MS: '10', CONSUMER_STALL_ATTEMPTS: '0', METRICS_ENABLED: 'yes' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((problem) => problem.variable).sort()).toEqual(['CONSUMER_RETRY_MAX_MS', 'CONSUMER_STALL_ATTEMPTS', 'METRICS_ENABLED']);
  });
});

describe('LedgerConfig portal tokens and CORS', () => {
  const secret = 'a-portal-token-secret-of-32-chars!';

  it('has no secret, no origins and no page base by default (portal tokens off, no cross-origin access)', () => {
    const config = loadConfig(LedgerConfig, base);
    expect([config.PORTAL_TOKEN_SECRET, config.PORTAL_TOKEN_PREVIOUS_SECRET, config.PORTAL_ALLOWED_ORIGINS, config.PORTAL_PAGE_BASE_URL]).toEqual([undefined, undefined, [], undefined]);
  });

  it('takes a secret, a previous secret, origins and a page base', () => {
    const config = loadConfig(LedgerConfig, {
      ...base,
      PORTAL_TOKEN_SECRET: secret,
      PORTAL_TOKEN_PREVIOUS_SECRET: `${secret}-old`,
      PORTAL_ALLOWED_ORIGINS: 'https://app.example, http://localhost:5173,http://[::1]:8080',
      PORTAL_PAGE_BASE_URL: 'https://credits.example/tally',
    });
    expect(config.PORTAL_ALLOWED_ORIGINS).toEqual(['https://app.example', 'http://localhost:5173', 'http://[::1]:8080']);
    expect([config.PORTAL_TOKEN_SECRET, config.PORTAL_PAGE_BASE_URL]).toEqual([secret, 'https://credits.example/tally']);
  });

  it('refuses a short secret, an origin with a path or a wildcard, and a page base with a fragment, naming each variable', () => {
    const error = (() => {
      try {
        loadConfig(LedgerConfig, { ...base, PORTAL_TOKEN_SECRET: 'short', PORTAL_TOKEN_PREVIOUS_SECRET: 'also-short', PORTAL_ALLOWED_ORIGINS: 'https://app.example/,*', PORTAL_PAGE_BASE_URL: 'https://x.example/#a' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((problem) => problem.variable).sort()).toEqual(['PORTAL_ALLOWED_ORIGINS', 'PORTAL_PAGE_BASE_URL', 'PORTAL_TOKEN_PREVIOUS_SECRET', 'PORTAL_TOKEN_SECRET']);
  });

  it('keeps the secrets out of what it logs', () => {
    const logged = redactConfig(loadConfig(LedgerConfig, { ...base, PORTAL_TOKEN_SECRET: secret, PORTAL_TOKEN_PREVIOUS_SECRET: `${secret}-old` }));
    expect([logged.PORTAL_TOKEN_SECRET, logged.PORTAL_TOKEN_PREVIOUS_SECRET]).toEqual(['[redacted]', '[redacted]']);
  });
});

describe('LedgerConfig USAGE_TOPIC_NAMESPACES (per-product usage topics)', () => {
  it('given none, then no product topic', () => {
    expect(loadConfig(LedgerConfig, base).usageTopicNamespaces().size).toBe(0);
  });

  it('given topic=prefix entries, when a topic repeats, then it may carry usage of every prefix named', () => {
    const config = loadConfig(LedgerConfig, { ...base, USAGE_TOPIC_NAMESPACES: 'usage.events.chat.v1=chat-,usage.events.karma.v1=karma-,usage.events.chat.v1=shared-' });
    expect([...config.usageTopicNamespaces()]).toEqual([
      ['usage.events.chat.v1', ['chat-', 'shared-']],
      ['usage.events.karma.v1', ['karma-']],
    ]);
  });

  it('given an entry without a prefix or with spaces, then the config is refused naming the variable', () => {
    for (const value of ['usage.events.chat.v1', 'usage.events.chat.v1=', 'usage events=chat-']) {
      expect(() => loadConfig(LedgerConfig, { ...base, USAGE_TOPIC_NAMESPACES: value })).toThrow(/USAGE_TOPIC_NAMESPACES/);
    }
  });

  it("given usage-ingest's own topic as a product topic, then refused (it carries every account)", () => {
    const config = loadConfig(LedgerConfig, { ...base, USAGE_TOPIC_NAMESPACES: 'usage.events.v1=chat-' });
    expect(() => config.usageTopicNamespaces()).toThrow(/USAGE_EVENTS_TOPIC/);
  });

  it('given a dead-letter topic or another of the ledger\'s own topics as a product topic, then refused naming it', () => {
    // The usage consumer would read its own dead letters back: an OCCURRED_IN_FUTURE usage charged once its time came.
    for (const [topic, variable] of [
      ['usage.events.dlq.v1', 'USAGE_DLQ_TOPIC'],
      ['subscription.events.v1', 'SUBSCRIPTION_EVENTS_TOPIC'],
      ['subscription.events.dlq.v1', 'SUBSCRIPTION_DLQ_TOPIC'],
      ['ledger.events.v1', 'LEDGER_EVENTS_TOPIC'],
      ['ledger.events.dlq.v1', 'LEDGER_DLQ_TOPIC'],
    ]) {
      const config = loadConfig(LedgerConfig, { ...base, USAGE_TOPIC_NAMESPACES: `${topic}=chat-` });
      expect(() => config.usageTopicNamespaces()).toThrow(new RegExp(variable));
    }
  });
});

describe('LedgerConfig EVENT_STORE=eventstoredb', () => {
  it('given no ESDB_CONNECTION_STRING, then refused at load naming it (not a crash loop on an empty connection string)', () => {
    expect(() => loadConfig(LedgerConfig, { ...base, EVENT_STORE: 'eventstoredb' })).toThrow(/ESDB_CONNECTION_STRING/);
    expect(() => loadConfig(LedgerConfig, { ...base, EVENT_STORE: 'eventstoredb', ESDB_CONNECTION_STRING: '' })).toThrow(/ESDB_CONNECTION_STRING/);
    expect(loadConfig(LedgerConfig, { ...base, EVENT_STORE: 'eventstoredb', ESDB_CONNECTION_STRING: 'esdb://127.0.0.1:2113?tls=false' }).EVENT_STORE).toBe('eventstoredb');
    expect(loadConfig(LedgerConfig, { ...base, ESDB_CONNECTION_STRING: '' }).EVENT_STORE).toBe('postgres'); // not needed there
  });
});

describe('LedgerConfig USAGE_MAX_FUTURE_SKEW_SECONDS', () => {
  it("given less than usage-ingest's largest MAX_FUTURE_SKEW_SECONDS (300) and a margin for clocks, then refused naming it", () => {
    // usage-ingest answers 202 up to its own skew; a ledger allowing less dead-letters that usage uncharged.
    expect(() => loadConfig(LedgerConfig, { ...base, USAGE_MAX_FUTURE_SKEW_SECONDS: '0' })).toThrow(/USAGE_MAX_FUTURE_SKEW_SECONDS/);
    expect(() => loadConfig(LedgerConfig, { ...base, USAGE_MAX_FUTURE_SKEW_SECONDS: '599' })).toThrow(/USAGE_MAX_FUTURE_SKEW_SECONDS/);
    expect(loadConfig(LedgerConfig, { ...base, USAGE_MAX_FUTURE_SKEW_SECONDS: '600' }).USAGE_MAX_FUTURE_SKEW_SECONDS).toBe(600);
  });
});

// The relay's lock and its LISTEN, and the balance streams' LISTEN, hold a connection each for good; with
// EVENT_STORE_TRANSACTIONAL=false a consumer's batch holds one (its offsets) while its append takes another. A pool
// smaller than that stalled the process with nothing refused at boot: every statement waited for a connection.
describe('LedgerConfig PG_POOL_MAX against what the process holds', () => {
  const refusal = (env: Record<string, string>) => {
    try {
      loadConfig(LedgerConfig, { ...base, ...env });
    } catch (e) {
      return (e as ConfigError).message;
    }
    return undefined;
  };

  it('takes the defaults, and the smallest pool that leaves one connection besides the held ones', () => {
    expect(refusal({})).toBeUndefined();
    expect(loadConfig(LedgerConfig, base).poolConnectionsNeeded()).toBe(4);
    expect(refusal({ PG_POOL_MAX: '4' })).toBeUndefined();
    expect(refusal({ PG_POOL_MAX: '2', WORKERS: 'none' })).toBeUndefined();
  });

  it('refuses a pool the held connections would fill, naming PG_POOL_MAX', () => {
    expect(refusal({ PG_POOL_MAX: '3' })).toContain('PG_POOL_MAX');
    expect(refusal({ PG_POOL_MAX: '1', WORKERS: 'none' })).toContain('PG_POOL_MAX');
  });

  it('counts a second connection per concurrent batch where consumers append outside their transaction', () => {
    const idempotent = { EVENT_STORE_TRANSACTIONAL: 'false', CONSUMER_PARTITIONS_CONCURRENTLY: '3' };
    expect(loadConfig(LedgerConfig, { ...base, ...idempotent }).poolConnectionsNeeded()).toBe(10);
    expect(refusal({ ...idempotent, PG_POOL_MAX: '10' })).toBeUndefined();
    expect(refusal({ ...idempotent, PG_POOL_MAX: '9' })).toContain('PG_POOL_MAX');
    // The default pool (20) is too small for 9 batches at once on that path.
    expect(refusal({ EVENT_STORE_TRANSACTIONAL: 'false', CONSUMER_PARTITIONS_CONCURRENTLY: '9' })).toContain('PG_POOL_MAX');
  });
});

describe('LedgerConfig PG_POOL_MAX with EventStoreDB', () => {
  it('counts no relay LISTEN on the pool: EventStoreDB\'s subscription holds none', () => {
    const config = loadConfig(LedgerConfig, { ...base, EVENT_STORE: 'eventstoredb', ESDB_CONNECTION_STRING: 'esdb://127.0.0.1:2113?tls=false', PG_POOL_MAX: '3' });
    expect(config.poolConnectionsNeeded()).toBe(3);
  });
});

import { Transform } from 'class-transformer';
import { IsArray, IsBoolean, IsIn, IsInt, IsNotEmpty, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength, ValidateIf } from 'class-validator';
import { CommonConfig, Holds, Sensitive, splitList } from '@tally/shared';

/** The ledger's pool size when PG_POOL_MAX is unset. */
export const LEDGER_POOL_MAX = 20;

export const LEDGER_WORKERS = ['commands', 'relay', 'projection'] as const;
export type LedgerWorker = (typeof LEDGER_WORKERS)[number];
/** A browser origin: scheme, host and optional port, nothing after (`https://app.example`, `http://localhost:5173`). */
const ORIGIN_PATTERN = /^https?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)(:\d{1,5})?$/;
const WORKERS_PATTERN = new RegExp(`^(none|(${LEDGER_WORKERS.join('|')})(,(${LEDGER_WORKERS.join('|')}))*)$`);

/** Every setting of the ledger service; validated at boot. */
export class LedgerConfig extends CommonConfig {
  override PORT = 3002;
  override DATABASE_SCHEMA = 'ledger';

  /** `postgres` (default, exercised in CI) or `eventstoredb` (needs ESDB_CONNECTION_STRING). */
  @IsIn(['postgres', 'eventstoredb'])
  EVENT_STORE = 'postgres';

  /**
   * PostgreSQL store only: whether the usage and subscription consumers append their events in the transaction
   * that stores their Kafka offsets (true, the default) or take the idempotent path EventStoreDB needs: append
   * first, then store the offset (false; CI runs the kill -9 tests both ways). EventStoreDB is always the latter.
   */
  @IsBoolean()
  EVENT_STORE_TRANSACTIONAL = true;

  /** Required with EVENT_STORE=eventstoredb (refused at load without it, rather than a crash loop on an empty string). */
  @Sensitive()
  @ValidateIf((config: LedgerConfig) => config.EVENT_STORE === 'eventstoredb')
  @IsString()
  @IsNotEmpty({ message: 'ESDB_CONNECTION_STRING is required with EVENT_STORE=eventstoredb' })
  ESDB_CONNECTION_STRING?: string;

  @IsString()
  RATE_CARD_PATH = 'config/rate-card.yaml';

  /** Plan catalogue; the ledger reads its credit packs for purchases by pack id. */
  @IsString()
  PLANS_PATH = 'config/plans.yaml';

  /**
   * The credits page's build (`npm run build:page`), served at /portal/ without an API key (the page is public; the
   * API it calls is not). Relative to the working directory like the paths above; empty serves no page.
   */
  @IsString()
  PORTAL_PAGE_DIR = 'apps/credits-page/dist';

  @IsString() USAGE_EVENTS_TOPIC = 'usage.events.v1';
  @IsString() USAGE_DLQ_TOPIC = 'usage.events.dlq.v1';

  /**
   * Per-product usage topics (the Kafka-direct path, README "API": namespaces), comma-separated `topic=prefix`
   * entries: the ledger also consumes each topic (same group and dead-letter topic as USAGE_EVENTS_TOPIC), and a
   * message on it for an account whose id starts with none of the topic's prefixes is dead-lettered
   * (ACCOUNT_OUTSIDE_NAMESPACE), never applied. Repeat a topic for a second prefix
   * (`usage.events.chat.v1=chat-,usage.events.chat.v1=shared-`). None by default.
   */
  @Transform(splitList)
  @IsArray()
  @Matches(/^[A-Za-z0-9._-]{1,249}=[^\s=,]{1,128}$/, { each: true, message: 'USAGE_TOPIC_NAMESPACES must be comma-separated topic=account-id-prefix entries' })
  USAGE_TOPIC_NAMESPACES: string[] = [];
  @IsString() SUBSCRIPTION_EVENTS_TOPIC = 'subscription.events.v1';
  @IsString() SUBSCRIPTION_DLQ_TOPIC = 'subscription.events.dlq.v1';
  @IsString() LEDGER_EVENTS_TOPIC = 'ledger.events.v1';
  @IsString() LEDGER_DLQ_TOPIC = 'ledger.events.dlq.v1';

  @IsString() CONSUMER_GROUP = 'ledger';
  @IsString() PROJECTION_GROUP = 'ledger-projections';

  /**
   * Accounts whose decided state stays in memory (LRU), about 1.5 KB each with a short history (what a long one
   * remembers is bounded by ACCOUNT_CACHE_REMEMBERED); the accounts a batch
   * misses are folded from the event store in one read (~40 us each), so a miss is cheap and the cache stays small.
   * 10,000 keeps the ledger under 512 MB with 1,000,000 accounts touched (docs/benchmarks.md, issue 17, session 14).
   */
  @IsInt() @Min(1) @Max(10_000_000)
  ACCOUNT_CACHE_SIZE = 10_000;

  /**
   * What the cached accounts may remember together: each counts 1 plus its idempotency keys and the debits a refund
   * may name (a usage is one debit, ~270 bytes on Node 24; a busy account remembers every usage since its last
   * snapshot). Beyond it the least recently used accounts forget their usage and hold keys and unrefunded debits in
   * place (`AccountCache` in account.repository.ts). 250,000 keeps the cache's worst case near 80 MB
   * (account-cache.memory.unit.spec.ts measures it). PostgreSQL only, like snapshots: with EventStoreDB only
   * ACCOUNT_CACHE_SIZE bounds the memory.
   */
  @IsInt() @Min(1) @Max(100_000_000)
  ACCOUNT_CACHE_REMEMBERED = 250_000;

  /**
   * An account is snapshotted, and its memory of usage and hold keys bounded, every this many events of its stream
   * (ledger-domain, account-memory.model.ts): loading it reads the snapshot and at most this many events. 0 turns
   * snapshots off (every load folds the whole stream, and the memory grows with it). PostgreSQL only: with
   * EventStoreDB the store cannot look a forgotten key up by event id, so snapshots are off there. 200, not 500: a
   * cold load's worst case folds 199 events instead of 499 (26 against 34–47 ms for a 100,000-event account), at no
   * throughput cost measured (docs/benchmarks.md, session 21).
   */
  @IsInt() @Min(0) @Max(1_000_000)
  ACCOUNT_SNAPSHOT_EVERY = 200;

  /**
   * Live balance streams (`GET /balance/stream`, server-sent events) one ledger instance holds open, of every caller
   * together: each holds a socket, a file descriptor and a little memory for as long as its client stays (portal
   * tokens are capped per account, 5, and each key by BALANCE_STREAMS_PER_KEY). Past it a stream is refused with 503
   * STREAMS_AT_CAPACITY and Retry-After (the client opens it again, at another instance behind a load balancer). Keep it
   * below the process's open-file limit (`ulimit -n`) less what the pools and Kafka need.
   */
  @IsInt() @Min(1) @Max(1_000_000)
  BALANCE_STREAMS_MAX = 10_000;

  /**
   * Of those, what one API key may hold (its own streams and those of the portal tokens it minted): past it, 429
   * TOO_MANY_STREAMS with Retry-After. Without it one tenant's key (or its tokens, 5 per account) could take every
   * stream of the instance, and every other product's credits pages would get 503.
   */
  @IsInt() @Min(1) @Max(1_000_000)
  BALANCE_STREAMS_PER_KEY = 5_000;

  /** Messages applied per PostgreSQL transaction by the usage consumer and the projection. */
  @IsInt() @Min(1) @Max(10_000)
  CONSUMER_MAX_BATCH = 1000;

  /** Partitions each consumer (usage, projection) applies at once, each in its own transaction. */
  @IsInt() @Min(1) @Max(64)
  @Holds(
    (config: LedgerConfig) => config.poolMax(LEDGER_POOL_MAX) >= config.poolConnectionsNeeded(),
    'PG_POOL_MAX is smaller than what this process holds at once (poolConnectionsNeeded): 4 with the relay (its lock and LISTEN, the balance streams\' LISTEN, one for the rest), plus 2 × CONSUMER_PARTITIONS_CONCURRENTLY with EVENT_STORE_TRANSACTIONAL=false; every statement would wait for a connection',
  )
  CONSUMER_PARTITIONS_CONCURRENTLY = 3;

  /**
   * Longest wait between two attempts at a batch that keeps failing (exponential backoff from 200 ms, libs/kafka's
   * retry schedule): how soon a consumer notices that the fault is gone.
   */
  @IsInt() @Min(100) @Max(300_000)
  CONSUMER_RETRY_MAX_MS = 30_000;

  /** A partition whose batch failed this many times in a row, or for CONSUMER_STALL_SECONDS, is stalled: not ready, `tally_kafka_consumer_stalled` 1. */
  @IsInt() @Min(1) @Max(1_000)
  CONSUMER_STALL_ATTEMPTS = 5;

  @IsInt() @Min(1) @Max(3_600)
  CONSUMER_STALL_SECONDS = 30;

  @IsInt() @Min(1) @Max(10_000)
  RELAY_BATCH = 2000;

  /**
   * How long the relay leader's lock session may stay idle before PostgreSQL ends it (idle_session_timeout; the leader
   * probes it every 5 s, so at least three probes' time: a pause of the leader must not end a live lead): a leader
   * that died without closing its connection frees the lead after this long.
   */
  @IsInt() @Min(15) @Max(3_600)
  RELAY_LOCK_IDLE_TIMEOUT_SECONDS = 20;

  /**
   * How far ahead a usage consumed from Kafka may be dated, after the earlier of its record's timestamp and the ledger's
   * clock; later, it is dead-lettered OCCURRED_IN_FUTURE. At least 600: 300 above usage-ingest's MAX_FUTURE_SKEW_SECONDS
   * (at most 300), so hosts' clocks a little apart never refuse what usage-ingest accepted (it would never be charged).
   */
  @IsInt() @Min(600) @Max(86_400)
  USAGE_MAX_FUTURE_SKEW_SECONDS = 600;

  /** Default time to live of a hold placed by an authorization. */
  @IsInt() @Min(1) @Max(86_400)
  HOLD_DEFAULT_TTL_SECONDS = 300;

  /**
   * How long a hold's credits stay reserved after its TTL (the `expiresAt` the authorization answers), so that a usage
   * the product reports just before that still settles it although the ledger applies it a little later (usage-ingest,
   * Kafka and the consumer between them; a consumer's restart or rebalance takes seconds). Without it such a usage found
   * its hold released, was charged as a plain debit, and on a write-off plan what other usage had meanwhile spent of
   * the released credits was written off. The hold's event and the history carry the instant its credits are released.
   */
  @IsInt() @Min(0) @Max(3_600)
  HOLD_SETTLE_GRACE_SECONDS = 60;

  /**
   * Which background workers this process runs, comma-separated: `commands` (the usage and subscription
   * consumers), `relay` (event store → ledger.events.v1), `projection` (ledger.events.v1 → read models); `none`
   * for an HTTP-only instance. All three by default; split them over processes to use more than one core.
   */
  @Matches(WORKERS_PATTERN, { message: `WORKERS must be "none" or a comma-separated list of ${LEDGER_WORKERS.join(', ')}` })
  WORKERS = LEDGER_WORKERS.join(',');

  /**
   * Signs portal tokens (HS256; at least 32 characters, e.g. `openssl rand -base64 48`). Unset: minting answers 503
   * PORTAL_DISABLED and portal tokens are refused.
   */
  @Sensitive()
  @IsOptional() @IsString() @MinLength(32) @MaxLength(512)
  PORTAL_TOKEN_SECRET?: string;

  /** The secret before the current one, during a rotation: tokens it signed still verify until they expire. */
  @Sensitive()
  @IsOptional() @IsString() @MinLength(32) @MaxLength(512)
  PORTAL_TOKEN_PREVIOUS_SECRET?: string;

  /** Origins whose pages may read the API from a browser (CORS), comma-separated; none by default. */
  @Transform(splitList)
  @IsArray()
  @Matches(ORIGIN_PATTERN, { each: true, message: 'PORTAL_ALLOWED_ORIGINS must be origins such as https://app.example (scheme, host, optional port), comma-separated' })
  PORTAL_ALLOWED_ORIGINS: string[] = [];

  /** Where the credits page is served, for the `pageUrl` a mint answers (`<base>/portal/#token=…`); default http://localhost:PORT. */
  @IsOptional()
  @Matches(/^https?:\/\/[^\s?#]+$/, { message: 'PORTAL_PAGE_BASE_URL must be an http(s) URL without query or fragment' })
  PORTAL_PAGE_BASE_URL?: string;

  /** USAGE_TOPIC_NAMESPACES by topic: the account-id prefixes each product topic may carry usage for. */
  usageTopicNamespaces(): ReadonlyMap<string, readonly string[]> {
    const byTopic = new Map<string, string[]>();
    for (const entry of this.USAGE_TOPIC_NAMESPACES) {
      const [topic, prefix] = entry.split('=') as [string, string];
      if (topic === this.USAGE_EVENTS_TOPIC) throw new Error(`USAGE_TOPIC_NAMESPACES: ${topic} is USAGE_EVENTS_TOPIC (usage-ingest's, every account); name a product topic`);
      const own = this.ownTopics().find(([, name]) => name === topic);
      // A dead-letter topic read back as usage would charge what was refused (an OCCURRED_IN_FUTURE usage, once its time came).
      if (own) throw new Error(`USAGE_TOPIC_NAMESPACES: ${topic} is ${own[0]}, one of the ledger's own topics; name a product topic`);
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), prefix]);
    }
    return byTopic;
  }

  /** The topics the ledger reads or writes for itself, by variable (none of them a product's usage topic). */
  private ownTopics(): [string, string][] {
    return [
      ['USAGE_DLQ_TOPIC', this.USAGE_DLQ_TOPIC],
      ['SUBSCRIPTION_EVENTS_TOPIC', this.SUBSCRIPTION_EVENTS_TOPIC],
      ['SUBSCRIPTION_DLQ_TOPIC', this.SUBSCRIPTION_DLQ_TOPIC],
      ['LEDGER_EVENTS_TOPIC', this.LEDGER_EVENTS_TOPIC],
      ['LEDGER_DLQ_TOPIC', this.LEDGER_DLQ_TOPIC],
    ];
  }

  /**
   * The fewest connections this process's pool must have for no work to wait on one for ever: the relay's lock and its
   * LISTEN (PostgreSQL's event store) and the balance streams' LISTEN are held for good, and one more is left for
   * everything else. A consumer's
   * batch reads and appends in the transaction that stores its offsets, on the one connection it holds; only where it
   * appends outside it (EVENT_STORE_TRANSACTIONAL=false) does it hold one while taking another, so the usage and
   * subscription consumers' batches under way (CONSUMER_PARTITIONS_CONCURRENTLY each) count once more.
   */
  poolConnectionsNeeded(): number {
    const nested = this.runs('commands') && this.EVENT_STORE === 'postgres' && !this.EVENT_STORE_TRANSACTIONAL ? 2 * this.CONSUMER_PARTITIONS_CONCURRENTLY : 0;
    // The relay's LISTEN is PostgreSQL's event store's (EventStoreDB's subscription holds none of the pool).
    const relay = this.runs('relay') ? (this.EVENT_STORE === 'postgres' ? 2 : 1) : 0;
    return relay + 1 + 1 + nested;
  }

  runs(worker: LedgerWorker): boolean {
    return this.WORKERS.split(',').includes(worker);
  }

  /**
   * Whether this process talks to Kafka: its consumers and its relay do; the HTTP API alone (WORKERS=none) answers from
   * PostgreSQL, so a Kafka outage neither keeps it from starting nor takes it out of service.
   */
  usesKafka(): boolean {
    return LEDGER_WORKERS.some((worker) => this.runs(worker));
  }
}

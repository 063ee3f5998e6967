import { Transform } from 'class-transformer';
import { ArrayMinSize, IsBoolean, IsIn, IsInt, IsNotEmpty, IsNumber, IsOptional, IsString, Matches, Max, Min, ValidateIf } from 'class-validator';
import { readFileSync } from 'node:fs';
import { IsRateLimitsJson, parseRateLimits } from '../http/rate-limits.config';
import type { RateLimit } from '../http/rate-limit.model';
import { Holds, Sensitive, splitList } from './env-config.parser';
import type { PoolLimits } from '../database/service-pool.provider';

/** Settings every service shares. Each app's config class extends this one. */
export class CommonConfig {
  @IsIn(['development', 'test', 'production'])
  NODE_ENV: string = 'development';

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL: string = 'info';

  @IsInt() @Min(0) @Max(65535)
  PORT!: number;

  @Sensitive()
  @Matches(/^postgres(ql)?:\/\/.+/, { message: 'DATABASE_URL must be a postgres:// connection string' })
  DATABASE_URL: string = 'postgres://postgres@127.0.0.1:5432/tally';

  /**
   * How long a service's pooled connections wait for PostgreSQL to answer a statement before giving the connection up
   * (createServicePool). Longer than any statement a service runs: its batches, a relay page. At most 90 s, and never
   * for ever: the workers' readiness ends a failure streak after 120 s (expiry) or 180 s (relay) without a failure, so
   * a statement that failed only later would leave a stuck worker reported ready.
   */
  @IsInt() @Min(1_000) @Max(90_000)
  PG_QUERY_TIMEOUT_MS = 60_000;

  /**
   * How long a request for a pooled connection waits for one (every connection busy, or a new one being opened) before
   * it fails (createServicePool; pg's connectionTimeoutMillis); 0: for ever. An HTTP request that fails so is answered
   * 503 DEPENDENCY_UNAVAILABLE with Retry-After; a consumer's batch rolls back and is retried.
   */
  @IsInt() @Min(0) @Max(3_600_000)
  PG_CONNECT_TIMEOUT_MS = 10_000;

  /**
   * Most connections each of this process's PostgreSQL pools opens; unset, the service's own default (the ledger 20,
   * usage-ingest and subscription-cycle 10, notification 5 in each of its two pools). Every replica has its own pools:
   * replicas × pools must stay under the server's max_connections (100 by default), HPA maximums included.
   */
  @IsOptional() @IsInt() @Min(1) @Max(1_000)
  PG_POOL_MAX?: number;

  /** What a service's pools give up on: a statement not answered, a connection not had (serviceSession). */
  poolLimits(): PoolLimits {
    return { queryTimeoutMs: this.PG_QUERY_TIMEOUT_MS, connectTimeoutMs: this.PG_CONNECT_TIMEOUT_MS };
  }

  /** `PG_POOL_MAX`, or the service's default when unset. */
  poolMax(serviceDefault: number): number {
    return this.PG_POOL_MAX ?? serviceDefault;
  }

  /** PostgreSQL schema that holds this service's tables. */
  @Matches(/^[a-z_][a-z0-9_]{0,62}$/, { message: 'DATABASE_SCHEMA must be a lower-case SQL identifier' })
  DATABASE_SCHEMA!: string;

  @Transform(splitList)
  @ArrayMinSize(1)
  @IsString({ each: true })
  KAFKA_BROKERS: string[] = ['127.0.0.1:9092'];

  @IsString()
  KAFKA_CLIENT_ID: string = 'tally';

  /** TLS to the brokers (what managed Kafka needs). The brokers' certificates are always verified. */
  @IsBoolean()
  KAFKA_SSL = false;

  /**
   * PEM file of the CA(s) that signed the brokers' certificates, when not a public CA Node already trusts. Only with
   * KAFKA_SSL=true: without it the connection would be plain text, whatever the operator meant.
   */
  @IsOptional() @IsString() @IsNotEmpty()
  @Holds((config: CommonConfig) => config.KAFKA_SSL === true, 'KAFKA_SSL_CA_FILE needs KAFKA_SSL=true (without it the brokers are reached in plain text)')
  KAFKA_SSL_CA_FILE?: string;

  /**
   * SASL authentication to the brokers, `none` by default. `plain` in production only with TLS (KAFKA_SSL=true): it
   * sends the password in clear. SCRAM sends none, and is allowed without TLS (a private network's choice).
   */
  @IsIn(['none', 'plain', 'scram-sha-256', 'scram-sha-512'])
  @Holds(
    (config: CommonConfig) => config.KAFKA_SASL_MECHANISM !== 'plain' || config.KAFKA_SSL === true || config.NODE_ENV !== 'production',
    'KAFKA_SASL_MECHANISM plain needs KAFKA_SSL=true in production (it sends the password in clear)',
  )
  KAFKA_SASL_MECHANISM: 'none' | 'plain' | 'scram-sha-256' | 'scram-sha-512' = 'none';

  @ValidateIf((config: CommonConfig) => config.KAFKA_SASL_MECHANISM !== 'none')
  @IsString() @IsNotEmpty({ message: 'KAFKA_SASL_USERNAME is required when KAFKA_SASL_MECHANISM is set' })
  KAFKA_SASL_USERNAME?: string;

  @Sensitive()
  @ValidateIf((config: CommonConfig) => config.KAFKA_SASL_MECHANISM !== 'none')
  @IsString() @IsNotEmpty({ message: 'KAFKA_SASL_PASSWORD is required when KAFKA_SASL_MECHANISM is set' })
  KAFKA_SASL_PASSWORD?: string;

  /**
   * Service API keys as JSON: [{"name":"chat-backend","sha256":"<hex of the key>","scopes":["usage:write"]}].
   * Only hashes are configured; the keys themselves are never stored.
   */
  @Sensitive()
  @IsString()
  API_KEYS: string = '[]';

  /**
   * Rate limits (README "Security"): token buckets per caller in each process, a 429 RATE_LIMITED with Retry-After
   * beyond them. On by default; /health/* and /metrics are never limited.
   */
  @IsBoolean()
  RATE_LIMIT_ENABLED = true;

  /** Sustained requests per second of one API key (or one portal token's account), unless RATE_LIMITS names it. */
  @IsNumber({ allowNaN: false, allowInfinity: false }) @Min(0.01) @Max(1_000_000)
  RATE_LIMIT_PER_SECOND = 100;

  /** Requests one API key may send at once after a quiet spell (the bucket's size). */
  @IsInt() @Min(1) @Max(1_000_000)
  RATE_LIMIT_BURST = 200;

  /** Per client address, for requests without a valid key (401s, 403s of a bad token, /docs): sustained per second. */
  @IsNumber({ allowNaN: false, allowInfinity: false }) @Min(0.01) @Max(1_000_000)
  RATE_LIMIT_ANONYMOUS_PER_SECOND = 5;

  /** Per client address, for requests without a valid key: the bucket's size. */
  @IsInt() @Min(1) @Max(1_000_000)
  RATE_LIMIT_ANONYMOUS_BURST = 20;

  /** Per-key overrides, JSON: `{"chat-backend": {"perSecond": 500, "burst": 1000}, "portal:acct-1": {…}}`. */
  @IsRateLimitsJson()
  RATE_LIMITS = '{}';

  /**
   * Client addresses (for the anonymous limit and the access log) from `X-Forwarded-For` when the service runs
   * behind a proxy: `false` (the socket's address, the default), a comma-separated list of the proxies'
   * addresses/CIDRs, or the number of proxy hops in front (1-9), as Fastify's `trustProxy`. `true` trusts every hop:
   * the client then names its own address (the left-most entry is its to write), so it is refused in production.
   */
  @Matches(/^(true|false|[1-9]|[0-9a-fA-F.:/]+(\s*,\s*[0-9a-fA-F.:/]+)*)$/, { message: 'TRUST_PROXY must be false, a list of proxy addresses/CIDRs or a hop count 1-9 (true outside production)' })
  @Holds(
    (config: CommonConfig) => config.TRUST_PROXY !== 'true' || config.NODE_ENV !== 'production',
    'TRUST_PROXY=true lets a client choose its own address (X-Forwarded-For) in production: give the proxies\' addresses/CIDRs or the hop count',
  )
  TRUST_PROXY = 'false';

  /**
   * The OpenAPI page (/docs, /docs-json): `public` (anyone), `key` (any valid API key, whatever its scopes) or `off`
   * (not served). Default `public`, and `key` when NODE_ENV=production (README "Security").
   */
  @IsOptional() @IsIn(['public', 'key', 'off'])
  DOCS_ACCESS?: 'public' | 'key' | 'off';

  /** `Strict-Transport-Security` max-age in seconds on every answer; 0 sends no HSTS header (TLS ends elsewhere). */
  @IsInt() @Min(0) @Max(63_072_000)
  HSTS_MAX_AGE_SECONDS = 31_536_000;

  /**
   * `GET /metrics` (Prometheus text) and the HTTP request metrics. Unauthenticated like /health/*: keep the path off
   * the public ingress, or turn it off here. No type annotation: a reflected `Boolean` would let class-transformer turn
   * any string (`yes`) into true; unannotated, only `true`/`false` convert and anything else is refused.
   */
  @IsBoolean()
  METRICS_ENABLED = true;

  /**
   * Node's own flags from the environment, read (never set) by the service for one thing: a signal they give a
   * diagnostic (`--heapsnapshot-signal`, `--report-on-signal`) is not also a shutdown signal (`shutdownSignals`).
   */
  @IsOptional() @IsString()
  NODE_OPTIONS?: string;

  /**
   * Traces (OpenTelemetry, README "Tracing"): `none` (the default: the API's no-op tracer, nothing recorded) or `otlp`
   * (OTLP/HTTP JSON to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`). Every
   * OTEL_* setting the exporter uses is validated here and passed to it explicitly (`otlpExporterOptions`).
   */
  @IsIn(['none', 'otlp', 'console'])
  OTEL_TRACES_EXPORTER: 'none' | 'otlp' | 'console' = 'none';

  /** Where OTLP/HTTP goes (`/v1/traces` is appended); the exporter's default is http://localhost:4318. */
  @IsOptional() @Matches(/^https?:\/\/\S+$/, { message: 'OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL' })
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;

  /** The full URL traces are sent to, as given (takes precedence over OTEL_EXPORTER_OTLP_ENDPOINT). */
  @IsOptional() @Matches(/^https?:\/\/\S+$/, { message: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http(s) URL' })
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string;

  /** Headers on every export, `key=value` pairs separated by commas, values URL-encoded (a vendor's API key): redacted in logs. */
  @Sensitive()
  @IsOptional()
  @Matches(/^\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+\s*=[^,]*(,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+\s*=[^,]*)*$/, {
    message: 'OTEL_EXPORTER_OTLP_HEADERS must be key=value pairs separated by commas',
  })
  OTEL_EXPORTER_OTLP_HEADERS?: string;

  /** Milliseconds an export may take before it is abandoned (the standard default: 10 s). */
  @IsOptional() @Transform(({ value }) => (value === undefined || value === '' ? undefined : Number(value)))
  @IsInt() @Min(1) @Max(600_000)
  OTEL_EXPORTER_OTLP_TIMEOUT?: number;

  /** The traces' `service.name`; default the service's own name. */
  @IsOptional() @Matches(/^[\w.-]{1,100}$/, { message: 'OTEL_SERVICE_NAME must be 1-100 letters, digits, _ . or -' })
  OTEL_SERVICE_NAME?: string;

  /** The standard sampler names; parent-based by default, so a trace is kept or dropped whole. */
  @IsIn(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'])
  OTEL_TRACES_SAMPLER = 'parentbased_always_on';

  /** The ratio of the `traceidratio` samplers, 0 to 1. */
  @IsOptional() @Transform(({ value }) => (value === undefined || value === '' ? undefined : Number(value)))
  @Min(0) @Max(1)
  OTEL_TRACES_SAMPLER_ARG?: number;

  /** Milliseconds between two exports of the batch span processor (the standard OTEL_BSP_SCHEDULE_DELAY). */
  @IsInt() @Min(1) @Max(60_000)
  OTEL_BSP_SCHEDULE_DELAY = 5_000;

  /** DOCS_ACCESS, or its default: `key` in production, `public` elsewhere. */
  docsAccess(): 'public' | 'key' | 'off' {
    return this.DOCS_ACCESS ?? (this.NODE_ENV === 'production' ? 'key' : 'public');
  }

  /**
   * The limit of one caller (`key:<API key name>`, `key:portal:<accountId>` for a portal token, `ip:<address>`): its
   * RATE_LIMITS entry (by key name), else the default of keys, or of addresses.
   */
  rateLimitOf(): (caller: string) => RateLimit {
    const overrides = parseRateLimits(this.RATE_LIMITS);
    const keys = { perSecond: this.RATE_LIMIT_PER_SECOND, burst: this.RATE_LIMIT_BURST };
    const anonymous = { perSecond: this.RATE_LIMIT_ANONYMOUS_PER_SECOND, burst: this.RATE_LIMIT_ANONYMOUS_BURST };
    return (caller) => (caller.startsWith('key:') ? (overrides.get(caller.slice(4)) ?? keys) : anonymous);
  }

  /** TRUST_PROXY as Fastify's `trustProxy` option. */
  trustProxy(): boolean | string[] | ((address: string, hop: number) => boolean) {
    if (this.TRUST_PROXY === 'true' || this.TRUST_PROXY === 'false') return this.TRUST_PROXY === 'true';
    // A hop count, as Fastify takes a number (its types do not): the nearest `hops` addresses are proxies.
    if (/^[1-9]$/.test(this.TRUST_PROXY)) {
      const hops = Number(this.TRUST_PROXY);
      return (_address, hop) => hop < hops;
    }
    return this.TRUST_PROXY.split(',').map((entry) => entry.trim());
  }

  /** The OTLP/HTTP exporter's options from the validated OTEL_EXPORTER_OTLP_* settings (what is not set is left out). */
  otlpExporterOptions(): { url?: string; headers?: Record<string, string>; timeoutMillis?: number } {
    const url = this.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (this.OTEL_EXPORTER_OTLP_ENDPOINT && `${this.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, '')}/v1/traces`);
    const headers = this.OTEL_EXPORTER_OTLP_HEADERS
      ? Object.fromEntries(
          this.OTEL_EXPORTER_OTLP_HEADERS.split(',').map((pair) => {
            const at = pair.indexOf('=');
            return [pair.slice(0, at).trim(), decodeURIComponent(pair.slice(at + 1).trim())];
          }),
        )
      : undefined;
    return { ...(url && { url }), ...(headers && { headers }), ...(this.OTEL_EXPORTER_OTLP_TIMEOUT !== undefined && { timeoutMillis: this.OTEL_EXPORTER_OTLP_TIMEOUT }) };
  }

  /**
   * How every Kafka client of the service connects: brokers, TLS and SASL, in kafkajs's option shapes (spread
   * into `createKafkaClient`). Reads the CA file, so a missing file stops the service at boot with its path.
   */
  kafkaConnection(): KafkaConnection {
    const ssl = this.KAFKA_SSL ? (this.KAFKA_SSL_CA_FILE ? { ca: [readFileSync(this.KAFKA_SSL_CA_FILE, 'utf8')] } : true) : undefined;
    const sasl =
      this.KAFKA_SASL_MECHANISM === 'none'
        ? undefined
        : { mechanism: this.KAFKA_SASL_MECHANISM, username: this.KAFKA_SASL_USERNAME ?? '', password: this.KAFKA_SASL_PASSWORD ?? '' };
    return { brokers: this.KAFKA_BROKERS, ...(ssl ? { ssl } : {}), ...(sasl ? { sasl } : {}) };
  }
}

/** Broker addresses and security, structurally what kafkajs's `KafkaConfig` takes (this lib does not import kafkajs). */
export interface KafkaConnection {
  brokers: string[];
  ssl?: true | { ca: string[] };
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

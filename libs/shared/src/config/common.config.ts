import { Transform } from 'class-transformer';
import { ArrayMinSize, IsBoolean, IsIn, IsInt, IsNotEmpty, IsOptional, IsString, Matches, Max, Min, ValidateIf } from 'class-validator';
import { readFileSync } from 'node:fs';
import { Sensitive, splitList } from './env-config.parser';

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

  /** PEM file of the CA(s) that signed the brokers' certificates, when not a public CA Node already trusts. */
  @IsOptional() @IsString() @IsNotEmpty()
  KAFKA_SSL_CA_FILE?: string;

  /** SASL authentication to the brokers, `none` by default; with TLS (KAFKA_SSL=true) in production. */
  @IsIn(['none', 'plain', 'scram-sha-256', 'scram-sha-512'])
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
   * `GET /metrics` (Prometheus text) and the HTTP request metrics. Unauthenticated like /health/*: keep the path off
   * the public ingress, or turn it off here. No type annotation: a reflected `Boolean` would let class-transformer turn
   * any string (`yes`) into true; unannotated, only `true`/`false` convert and anything else is refused.
   */
  @IsBoolean()
  METRICS_ENABLED = true;

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

import { Transform } from 'class-transformer';
import { ArrayMinSize, IsBoolean, IsIn, IsInt, IsString, Matches, Max, Min } from 'class-validator';
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
}

import { IsInt, IsString, Max, Min } from 'class-validator';
import { CommonConfig } from '@tally/shared';

/** Every setting of usage-ingest; validated at boot (the app refuses to start and names the bad variable). */
export class UsageIngestConfig extends CommonConfig {
  override PORT = 3001;
  override DATABASE_SCHEMA = 'ingest';

  /** YAML rate card used to refuse usage that can never be priced. */
  @IsString()
  RATE_CARD_PATH = 'config/rate-card.yaml';

  @IsString()
  USAGE_EVENTS_TOPIC = 'usage.events.v1';

  /** Largest batch per request (the contract says 1,000). */
  @IsInt() @Min(1) @Max(1000)
  MAX_BATCH = 1000;

  /**
   * How far in the future `occurredAt` may be: clock skew between services, no more. Usage is priced by the rate card
   * version in effect at `occurredAt`, so usage dated ahead would be priced by a version not in effect yet (one that
   * may still be edited, with models not launched); a day, the old default, let any usage be. At most 300: the
   * ledger's USAGE_MAX_FUTURE_SKEW_SECONDS is at least 600, and past it what this service accepted with 202 would be
   * dead-lettered by the ledger (OCCURRED_IN_FUTURE) and never charged; the 300 between them are for the hosts' clocks.
   */
  @IsInt() @Min(0) @Max(300)
  MAX_FUTURE_SKEW_SECONDS = 300;

  @IsString()
  BODY_LIMIT = '2mb';

  /**
   * How long an accepted usage id is remembered (its content's fingerprint), to answer a retry as a duplicate and the
   * same id with other content as 409. Older ids are forgotten (accepted-usage-retention.worker.ts): one sent again
   * after that is produced again, and the ledger, which remembers every usage id, applies it once (other content
   * under it is dead-lettered there, IDEMPOTENCY_CONFLICT). Far beyond any client's retries.
   */
  @IsInt() @Min(1) @Max(3650)
  ACCEPTED_USAGE_RETENTION_DAYS = 35;

  /** How often the retention worker looks for ids older than ACCEPTED_USAGE_RETENTION_DAYS (at most a day). */
  @IsInt() @Min(1000) @Max(24 * 3600 * 1000)
  ACCEPTED_USAGE_PRUNE_INTERVAL_MS = 10 * 60_000;
}

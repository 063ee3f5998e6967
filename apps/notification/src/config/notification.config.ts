import { Transform, Type } from 'class-transformer';
import { IsBoolean, IsInt, IsNotEmpty, IsOptional, IsString, IsUrl, Matches, Max, MaxLength, Min, ValidateIf } from 'class-validator';
import { Topics } from '@tally/contracts';
import { CommonConfig, Sensitive, splitList } from '@tally/shared';
import { parseWebhookSecretKeys, type WebhookSecretKey } from '../settings/webhook-secret.codec';

/** Outside production only, when WEBHOOK_SECRET_KEYS is unset: a key everyone can read, so never one to rely on. */
export const DEVELOPMENT_WEBHOOK_SECRET_KEY: WebhookSecretKey = { id: 'development', key: Buffer.alloc(32, 'tally-development-only') };

const toBoolean = ({ value }: { value: unknown }): unknown =>
  value === 'true' || value === '1' ? true : value === 'false' || value === '0' || value === '' ? false : value;

/**
 * The notification service's one config class; the app refuses to boot when any value is invalid.
 * Numbers carry @Type(() => Number): without a type annotation there is no design:type metadata to convert by.
 */
export class NotificationConfig extends CommonConfig {
  @Type(() => Number) @IsInt() @Min(0) @Max(65535)
  override PORT = 3004;

  @Matches(/^[a-z_][a-z0-9_]{0,62}$/, { message: 'DATABASE_SCHEMA must be a lower-case SQL identifier' })
  override DATABASE_SCHEMA = 'notification';

  // ── Kafka ────────────────────────────────────────────────────────────────────
  /** Configurable so tests can use a topic of their own; in production always ledger.events.v1. */
  @IsString() @MaxLength(249)
  LEDGER_EVENTS_TOPIC: string = Topics.ledgerEvents;

  @IsString() @MaxLength(249)
  LEDGER_DEAD_LETTER_TOPIC: string = Topics.ledgerDeadLetter;

  @IsString() @MaxLength(200)
  KAFKA_GROUP_ID = 'notification';

  // ── SMTP ─────────────────────────────────────────────────────────────────────
  @IsString()
  SMTP_HOST = '127.0.0.1';

  @Type(() => Number) @IsInt() @Min(1) @Max(65535)
  SMTP_PORT = 587;

  /** true = implicit TLS (port 465); false = plain connection upgraded with STARTTLS when the server offers it. */
  @Transform(toBoolean) @IsBoolean()
  SMTP_SECURE = false;

  @IsOptional() @IsString()
  SMTP_USER?: string;

  /**
   * Refuse to go on over a plain connection the server did not let us upgrade with STARTTLS (SMTP_SECURE=false). On
   * by default whenever SMTP_USER is set: nodemailer upgrades only when the server offers it, so anyone on the path
   * who strips the offer would read the password and the emails. `false` only for a relay on a trusted network.
   */
  @IsOptional() @Transform(toBoolean) @IsBoolean()
  SMTP_REQUIRE_TLS?: boolean;

  /** Required with SMTP_USER: without it every email would fail to authenticate, and be retried for a day. */
  @Sensitive()
  // SMTP_USER empty is no authentication (email.client.ts), as unset is.
  @ValidateIf((config: NotificationConfig) => Boolean(config.SMTP_USER))
  @IsString()
  @IsNotEmpty({ message: 'SMTP_PASSWORD is required with SMTP_USER' })
  SMTP_PASSWORD?: string;

  /**
   * The longest one email may take, from connecting to the server's answer to the message; the attempt is then
   * abandoned (the connection closed before the server accepted anything) and retried. nodemailer's own timeouts are
   * per idle period, so a server answering every step just inside them could otherwise hold an attempt past its lease.
   */
  @Type(() => Number) @IsInt() @Min(100) @Max(120_000)
  SMTP_TIMEOUT_MS = 30_000;

  @IsString() @MaxLength(320)
  MAIL_FROM = 'Tally <alerts@tally.local>';

  /** Where emails send people to buy credits or upgrade. */
  @IsUrl({ require_tld: false, protocols: ['http', 'https'] })
  BILLING_URL = 'https://app.tally.local/billing';

  // ── Webhooks ─────────────────────────────────────────────────────────────────
  /**
   * The keys webhook signing secrets are encrypted with at rest (AES-256-GCM): `id:base64,id:base64`, 32 random
   * bytes each (`openssl rand -base64 32`); the first seals, all open (rotation: README "Webhook secrets").
   * Required in production; elsewhere, when unset, a fixed development key is used and the boot log says so.
   */
  @Sensitive()
  @ValidateIf((config: NotificationConfig) => config.NODE_ENV === 'production' || config.WEBHOOK_SECRET_KEYS !== undefined)
  @IsString({ message: 'WEBHOOK_SECRET_KEYS is required in production (id:base64 of 32 bytes, comma-separated)' })
  @Matches(/^\s*[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=\s*(,\s*[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=\s*)*$/, {
    message: 'WEBHOOK_SECRET_KEYS must be id:base64 pairs (each key 32 bytes, base64; ids 1-32 letters, digits, _ or -), comma-separated',
  })
  WEBHOOK_SECRET_KEYS?: string;

  /** The parsed keys (the development key when WEBHOOK_SECRET_KEYS is unset outside production). */
  webhookSecretKeys(): WebhookSecretKey[] {
    return this.WEBHOOK_SECRET_KEYS === undefined ? [DEVELOPMENT_WEBHOOK_SECRET_KEY] : parseWebhookSecretKeys(this.WEBHOOK_SECRET_KEYS);
  }

  /**
   * Hosts (names or IP literals) that may be called over plain http and may resolve to private, loopback or
   * link-local addresses. Empty in production; tests list 127.0.0.1.
   */
  @Transform(splitList) @IsString({ each: true })
  WEBHOOK_HTTP_ALLOWLIST: string[] = [];

  /** The longest one webhook may take, from connecting to the receiver's status line (its body is not read). */
  @Type(() => Number) @IsInt() @Min(100) @Max(120_000)
  WEBHOOK_TIMEOUT_MS = 10_000;

  /** Deliveries (webhook and email) are retried for this long after the first attempt, then marked failed. */
  @Type(() => Number) @IsInt() @Min(0) @Max(24 * 30)
  WEBHOOK_MAX_RETRY_HOURS = 24;

  /** First retry delay; doubles per attempt (with jitter) up to RETRY_MAX_DELAY_MS. */
  @Type(() => Number) @IsInt() @Min(10) @Max(24 * 3_600_000)
  RETRY_BASE_DELAY_MS = 30_000;

  @Type(() => Number) @IsInt() @Min(10) @Max(24 * 3_600_000)
  RETRY_MAX_DELAY_MS = 3_600_000;

  @Type(() => Number) @IsInt() @Min(10) @Max(600_000)
  DISPATCH_INTERVAL_MS = 1_000;

  /**
   * Settled deliveries (delivered, failed, cancelled) are deleted this many days after they settled; 0 keeps them for
   * ever. Longer than the ledger topic's retention in Kafka: an alert event redelivered after its delivery row is gone
   * would be recorded, and sent, again.
   */
  @Type(() => Number) @IsInt() @Min(0) @Max(3650)
  DELIVERY_RETENTION_DAYS = 90;

  /**
   * How many delivery attempts run at once in this instance (its slots): a pass claims as many due deliveries as there
   * are free slots, and an attempt frees its slot when it ends, so a receiver that answers slowly holds only its own.
   */
  @Type(() => Number) @IsInt() @Min(1) @Max(500)
  DISPATCH_BATCH_SIZE = 20;

  /**
   * How many of those slots webhooks to one receiver (scheme, host and port of its URL) may hold at once: a receiver
   * many accounts share (hooks.zapier.com, say) that stops answering holds these until its deadlines, not every slot.
   */
  @Type(() => Number) @IsInt() @Min(1) @Max(500)
  WEBHOOK_HOST_CONCURRENCY = 5;
}

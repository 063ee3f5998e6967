import { Type } from 'class-transformer';
import { IsInt, IsString, Max, Min, NotEquals } from 'class-validator';
import { CommonConfig } from '@tally/shared';
import { Topics } from '@tally/contracts';

/**
 * Every setting of subscription-cycle; validated at boot (the app refuses to start and names the bad variable).
 * Numbers carry @Type: class-transformer converts env strings by design:type metadata, which SWC emits only for
 * annotated properties (and lint forbids annotating a literal's type).
 */
export class SubscriptionCycleConfig extends CommonConfig {
  override PORT = 3003;
  override DATABASE_SCHEMA = 'subscription';

  /** YAML plan catalogue (plans and credit packs). */
  @IsString()
  PLANS_PATH = 'config/plans.yaml';

  /** How often the scheduler looks for subscriptions whose next cycle (or scheduled change) is due. */
  @Type(() => Number) @IsInt() @Min(10) @Max(3_600_000)
  SCHEDULER_INTERVAL_MS = 5_000;

  /** Subscriptions claimed per scheduler transaction (kept small: the rows stay locked until commit). */
  @Type(() => Number) @IsInt() @Min(1) @Max(1_000)
  SCHEDULER_BATCH = 50;

  /** How often the outbox relay publishes pending messages. */
  @Type(() => Number) @IsInt() @Min(10) @Max(600_000)
  OUTBOX_INTERVAL_MS = 500;

  /**
   * Days a published outbox message is kept after Kafka acknowledged it (for an operator's look), then deleted, at
   * start-up and hourly; 0 keeps them. Without it the table gains a row per subscription per month for ever.
   */
  @Type(() => Number) @IsInt() @Min(0) @Max(3_650)
  OUTBOX_RETENTION_DAYS = 7;

  /**
   * Days the answer of a subscription request sent with an Idempotency-Key is kept (a retry under the key within them
   * gets that answer), then deleted, at start-up and hourly; 0 keeps them. Longer than any billing integration retries.
   */
  @Type(() => Number) @IsInt() @Min(0) @Max(3_650)
  IDEMPOTENCY_KEY_RETENTION_DAYS = 30;

  /** Outbox messages published per relay transaction. */
  @Type(() => Number) @IsInt() @Min(1) @Max(1_000)
  OUTBOX_BATCH = 100;

  @IsString()
  SUBSCRIPTION_EVENTS_TOPIC: string = Topics.subscriptionEvents;

  /**
   * Partitions for the subscription events topic when this service has to create it (it may start before the deploy's
   * topic Job, which creates only missing topics): as the Job and scripts/infra.sh create every topic.
   */
  @Type(() => Number) @IsInt() @Min(1) @Max(256)
  SUBSCRIPTION_EVENTS_PARTITIONS = 6;

  /** Its replication factor then; -1: the broker's `default.replication.factor` (the k8s ConfigMap sets the Job's 3). */
  @Type(() => Number) @IsInt() @Min(-1) @Max(32) @NotEquals(0)
  SUBSCRIPTION_EVENTS_REPLICATION_FACTOR = -1;
}

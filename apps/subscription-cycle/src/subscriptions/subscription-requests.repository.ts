import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { ID_PATTERN } from '@tally/contracts';
import { deleteInBatches, LOGGER, PollingLoop, type Logger } from '@tally/shared';
import { SubscriptionCycleConfig } from '../config/subscription-cycle.config';
import { SubscriptionCycleError } from '../subscription-cycle.errors';
import type { PutSubscriptionResponseDto } from './subscription.dto';

/** The header a billing integration sends to make a retry of a PUT or DELETE answer as the first request did. */
export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';

/** Answers past IDEMPOTENCY_KEY_RETENTION_DAYS are deleted this often (and at start-up), this many per statement. */
const PURGE_INTERVAL_MS = 3_600_000;
const PURGE_BATCH = 1_000;

/** A request under an Idempotency-Key: the key, and the request's canonical form (what a retry must repeat). */
export interface KeyedRequest {
  key: string;
  request: string;
}

/** The header's value, checked: undefined when the request has none. */
export function idempotencyKeyOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!ID_PATTERN.test(header)) {
    throw new SubscriptionCycleError('INVALID_IDEMPOTENCY_KEY', 'The Idempotency-Key header is malformed.', [
      { field: IDEMPOTENCY_KEY_HEADER, reason: 'must be 1-128 characters of letters, digits and . _ : @ -' },
    ]);
  }
  return header;
}

/**
 * The stored answers of keyed requests, per account: looked up and saved in the request's transaction, under the
 * subscription row's lock (or, for a first subscription, the primary key both racing requests insert), so a retry
 * never decides again while the first is under way.
 */
@Injectable()
export class SubscriptionRequests implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly purgeLoop: PollingLoop;

  constructor(
    private readonly dataSource: DataSource,
    private readonly config: SubscriptionCycleConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.purgeLoop = new PollingLoop('subscription-request-purge', PURGE_INTERVAL_MS, () => this.purgeExpired(), logger);
  }

  onApplicationBootstrap(): void {
    if (this.config.IDEMPOTENCY_KEY_RETENTION_DAYS > 0) this.purgeLoop.start();
  }

  onApplicationShutdown(): Promise<void> {
    return this.purgeLoop.stop();
  }

  /** The first answer under the key, or undefined; the key used with another request is IDEMPOTENCY_CONFLICT. */
  async answered(manager: EntityManager, accountId: string, keyed: KeyedRequest): Promise<PutSubscriptionResponseDto | undefined> {
    const [row] = (await manager.query(`SELECT request, response FROM ${this.table} WHERE account_id = $1 AND idempotency_key = $2`, [accountId, keyed.key])) as {
      request: string;
      response: PutSubscriptionResponseDto;
    }[];
    if (!row) return undefined;
    if (row.request !== keyed.request) {
      throw new SubscriptionCycleError('IDEMPOTENCY_CONFLICT', 'This Idempotency-Key was already used with another request for this account.', [
        { field: IDEMPOTENCY_KEY_HEADER, reason: `was used with ${row.request}` },
      ]);
    }
    return row.response;
  }

  async save(manager: EntityManager, accountId: string, keyed: KeyedRequest, response: PutSubscriptionResponseDto): Promise<void> {
    await manager.query(`INSERT INTO ${this.table} (account_id, idempotency_key, request, response) VALUES ($1, $2, $3, $4)`, [
      accountId,
      keyed.key,
      keyed.request,
      JSON.stringify(response),
    ]);
  }

  /** Deletes the answers older than IDEMPOTENCY_KEY_RETENTION_DAYS (by the database's clock), a batch per statement. */
  async purgeExpired(): Promise<number> {
    const purged = await deleteInBatches(
      async () => {
        const [, deleted] = (await this.dataSource.query(
          `DELETE FROM ${this.table} WHERE (account_id, idempotency_key) IN (
             SELECT account_id, idempotency_key FROM ${this.table}
              WHERE created_at < now() - make_interval(days => $1) ORDER BY created_at LIMIT ${PURGE_BATCH})`,
          [this.config.IDEMPOTENCY_KEY_RETENTION_DAYS],
        )) as [unknown, number];
        return deleted;
      },
      PURGE_BATCH,
      () => !this.purgeLoop.started,
    );
    if (purged > 0) this.logger.info({ purged, retentionDays: this.config.IDEMPOTENCY_KEY_RETENTION_DAYS }, 'subscription request answers past their retention deleted');
    return purged;
  }

  private get table(): string {
    return `"${this.config.DATABASE_SCHEMA}".subscription_requests`;
  }
}

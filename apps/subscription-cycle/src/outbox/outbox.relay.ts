import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KafkaProducer, type EnvelopeLike } from '@tally/kafka';
import { carrierHeaders, deleteInBatches, NotReadyError, PollingLoop, StallDetector, type Logger } from '@tally/shared';
import { SubscriptionCycleConfig } from '../config/subscription-cycle.config';
import { OutboxMessageEntity } from '../database/outbox-message.entity';
import { LOGGER } from '@tally/shared';
import { outboxBacklogSources, outboxPublishFailures, outboxPublished, type OutboxBacklogSource } from './outbox.metrics';

/**
 * Publishes outbox messages to Kafka (keyed by account, acks=all, idempotent producer) and stamps them
 * published in the same transaction that claimed them.
 *
 * Delivery is at least once: if the process dies after Kafka acknowledged but before the commit, the batch is
 * published again on restart. That is harmless: the ledger applies CycleStarted idempotently by cycleId (and
 * PlanChanged by changeId), which is the envelope id. Nothing is lost: a message leaves the outbox only after
 * Kafka acknowledged it.
 *
 * Only one relay per schema works at a time (a transaction-scoped advisory lock), so messages of one account
 * are published in outbox order, which per account is commit order.
 */
/**
 * Readiness: not ready while publishing keeps failing (3 runs in a row, or 30 s) and the oldest unpublished
 * message is older than OUTBOX_STALL_MS, e.g. a broker that refuses every send ("timestamp out of acceptable range").
 */
const OUTBOX_STALL = { afterAttempts: 3, afterMs: 30_000 };
export const OUTBOX_STALL_MS = 30_000;
/** Published messages past OUTBOX_RETENTION_DAYS are deleted this often (and at start-up), this many per statement. */
const PURGE_INTERVAL_MS = 3_600_000;
const PURGE_BATCH = 1_000;
/** A run that found another replica relaying: it published nothing, and failed at nothing. */
const ELSEWHERE = 'elsewhere' as const;

@Injectable()
export class OutboxRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly loop: PollingLoop;
  /** Deletes published messages past their retention, on a loop of its own (publishing never waits for it). */
  private readonly purgeLoop: PollingLoop;
  private readonly stalls = new StallDetector(OUTBOX_STALL);
  /** tally_outbox_depth_messages, tally_outbox_oldest_age_seconds: read at scrape time. */
  private readonly backlog: OutboxBacklogSource = {
    backlog: async () => {
      const [row] = await this.dataSource.query(
        `SELECT count(*)::int AS depth, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS "oldestAgeSeconds"
           FROM "${this.config.DATABASE_SCHEMA}".outbox_messages WHERE published_at IS NULL`,
      );
      return { depth: Number(row.depth), oldestAgeSeconds: Math.max(0, Number(row.oldestAgeSeconds)) };
    },
  };

  constructor(
    private readonly dataSource: DataSource,
    private readonly producer: KafkaProducer,
    private readonly config: SubscriptionCycleConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.loop = new PollingLoop('outbox-relay', config.OUTBOX_INTERVAL_MS, (progressed) => this.publishTracked(progressed), logger);
    this.purgeLoop = new PollingLoop('outbox-purge', PURGE_INTERVAL_MS, () => this.purgePublished(), logger);
  }

  onApplicationBootstrap(): void {
    outboxBacklogSources.add(this.backlog);
    this.loop.start();
    if (this.config.OUTBOX_RETENTION_DAYS > 0) this.purgeLoop.start();
  }

  /** The relay is the producer's only user: once its loop has stopped, nothing sends any more. */
  async onApplicationShutdown(): Promise<void> {
    outboxBacklogSources.delete(this.backlog);
    await Promise.all([this.loop.stop(), this.purgeLoop.stop()]);
    await this.producer.disconnect();
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Messages were just written (a renewal): publish them now rather than at the next interval. */
  wakeNow(): void {
    this.loop.wakeIn(0);
  }

  /**
   * Readiness: throws a NotReadyError when publishing keeps failing and the oldest unpublished message is older
   * than OUTBOX_STALL_MS (names it, its age and the last error).
   */
  async health(): Promise<void> {
    this.loop.check(); // a run that never ends (its failures are the streak below)
    const [failing] = this.stalls.stalled();
    if (!failing) return;
    const oldest = await oldestUnpublished(this.dataSource, this.config.DATABASE_SCHEMA);
    if (!oldest || Number(oldest.ageMs) < OUTBOX_STALL_MS) return;
    throw new NotReadyError(
      `outbox stuck: message ${oldest.messageId} (id ${oldest.id}) unpublished for ${Math.round(Number(oldest.ageMs) / 1000)} s; publishing failed ${failing.attempts} times since ${failing.since}: ${failing.lastError}`,
      { oldestUnpublished: oldest, attempts: failing.attempts, since: failing.since, lastError: failing.lastError },
    );
  }

  /**
   * Deletes the messages published more than OUTBOX_RETENTION_DAYS ago (by the database's clock, which stamped them),
   * a batch per statement in id order, until none is left; returns how many. Unpublished ones are never touched. Safe
   * to forget: a message id is queued again only by a retried transaction (seconds), never after days.
   */
  async purgePublished(): Promise<number> {
    const purged = await deleteInBatches(
      async () => {
        const [, deleted] = (await this.dataSource.query(
          `DELETE FROM "${this.config.DATABASE_SCHEMA}".outbox_messages WHERE id IN (
             SELECT id FROM "${this.config.DATABASE_SCHEMA}".outbox_messages
              WHERE published_at < now() - make_interval(days => $1) ORDER BY id LIMIT ${PURGE_BATCH})`,
          [this.config.OUTBOX_RETENTION_DAYS],
        )) as [unknown, number];
        return deleted;
      },
      PURGE_BATCH,
      () => !this.purgeLoop.started, // shutting down: stop() has been asked for
    );
    if (purged > 0) this.logger.info({ purged, retentionDays: this.config.OUTBOX_RETENTION_DAYS }, 'published outbox messages past their retention deleted');
    return purged;
  }

  /**
   * One run of the loop, remembered for readiness. A run that found another replica relaying (its turn taken) neither
   * succeeded nor failed: counted a success, it cleared this replica's failure streak, and two replicas whose sends
   * both kept failing, taking turns, both stayed ready with the outbox stuck.
   */
  private async publishTracked(progressed: () => void): Promise<number> {
    try {
      const published = await this.publishPending(progressed);
      if (published === ELSEWHERE) return 0;
      this.stalls.succeeded('publish');
      return published;
    } catch (error) {
      outboxPublishFailures.inc();
      const streak = this.stalls.failed('publish', {}, error);
      this.logger.error({ err: error, attempt: streak.attempts, failingSince: streak.since }, 'outbox publish failed; retrying');
      return 0;
    }
  }

  /**
   * Publishes everything pending, batch by batch (`progressed` after each); returns how many messages were published,
   * or ELSEWHERE when another replica was relaying at the first batch.
   */
  async publishPending(progressed: () => void = () => undefined): Promise<number | typeof ELSEWHERE> {
    let total = 0;
    for (;;) {
      const published = await this.publishBatch();
      if (published === ELSEWHERE) return total === 0 ? ELSEWHERE : total;
      progressed();
      // Counted once committed: a batch whose stamp rolled back is published (and counted) again.
      if (published > 0) outboxPublished.inc(published);
      total += published;
      if (published < this.config.OUTBOX_BATCH) return total;
    }
  }

  private async publishBatch(): Promise<number | typeof ELSEWHERE> {
    return this.dataSource.transaction(async (manager) => {
      const [{ locked }] = await manager.query(
        `SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked`,
        [`${this.config.DATABASE_SCHEMA}.outbox_relay`],
      );
      if (!locked) return ELSEWHERE; // another instance is relaying
      const rows = await manager
        .getRepository(OutboxMessageEntity)
        .createQueryBuilder('m')
        .where('m.published_at IS NULL')
        .orderBy('m.id', 'ASC')
        .limit(this.config.OUTBOX_BATCH)
        .getMany();
      if (rows.length === 0) return 0;
      for (const [topic, group] of groupByTopicInOrder(rows)) {
        await this.producer.sendEnvelopes(topic, group.map((row) => row.envelope as unknown as EnvelopeLike), (_envelope, index) => carrierHeaders(group[index].trace ?? undefined));
      }
      await manager
        .createQueryBuilder()
        .update(OutboxMessageEntity)
        .set({ publishedAt: () => 'now()' })
        .whereInIds(rows.map((row) => row.id))
        .execute();
      this.logger.info({ count: rows.length, firstId: rows[0].id, lastId: rows[rows.length - 1].id }, 'outbox messages published');
      return rows.length;
    });
  }
}

/** Consecutive runs of one topic, so order is kept even if topics were ever mixed. */
function groupByTopicInOrder(rows: OutboxMessageEntity[]): [string, OutboxMessageEntity[]][] {
  const groups: [string, OutboxMessageEntity[]][] = [];
  for (const row of rows) {
    const last = groups[groups.length - 1];
    if (last && last[0] === row.topic) last[1].push(row);
    else groups.push([row.topic, [row]]);
  }
  return groups;
}

/**
 * The outbox's oldest unpublished message (the first in publishing order), with its age. Ordered by the table's id: a
 * bare `id` would name the output's text of it, and "10" sorts before "9".
 */
export async function oldestUnpublished(
  dataSource: DataSource,
  schema: string,
): Promise<{ id: string; messageId: string; topic: string; createdAt: Date; ageMs: string } | undefined> {
  const [oldest] = await dataSource.query(
    `SELECT o.id::text AS id, o.message_id AS "messageId", o.topic, o.created_at AS "createdAt",
            (extract(epoch FROM now() - o.created_at) * 1000)::bigint::text AS "ageMs"
       FROM "${schema}".outbox_messages o WHERE o.published_at IS NULL ORDER BY o.id LIMIT 1`,
  );
  return oldest;
}

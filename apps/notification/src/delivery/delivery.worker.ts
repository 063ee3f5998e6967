import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Pool } from 'pg';
import { truncateText } from '@tally/contracts';
import type { Logger } from '@tally/shared';
import { context, SpanKind } from '@opentelemetry/api';
import { CLOCK, contextOf, continueTrace, deleteInBatches, endSpan, PollingLoop, type Clock, quoteIdentifier, type TraceCarrier } from '@tally/shared';
import { NotificationConfig } from '../config/notification.config';
import { PG_POOL } from '../database/database.provider';
import type { AttemptRecord } from '../database/delivery.entity';
import { LOGGER } from '@tally/shared';
import { effectivePreferences, type Channel, type NotificationContent, type TypePreferences } from '../notification-type.model';
import { Mailer } from './email.client';
import { nextAttemptAt, type AttemptOutcome, type RetrySchedule } from './retry.schedule';
import { WebhookSender } from './webhook.client';
import { WebhookSecretBox } from '../settings/webhook-secret.codec';
import { deliveryAttempts, deliveryBacklogSources, deliveryDuration, type DeliveryBacklogSource } from './delivery.metrics';

/**
 * What a lease holds beyond the longest send: the reads and writes around the attempt. An attempt starts only with
 * at least half of it left after its send's deadline.
 */
const LEASE_MARGIN_MS = 30_000;
/** Result writes (recordResult) are retried this often (times the attempt), and given up this long before the lease ends. */
const RESULT_WRITE_RETRY_MS = 500;
const RESULT_WRITE_MARGIN_MS = 2_000;
/**
 * How often settled deliveries past DELIVERY_RETENTION_DAYS are purged (at start-up, then this long after each purge
 * ends), and how many rows one statement deletes.
 */
const PURGE_INTERVAL_MS = 3_600_000;
const PURGE_BATCH = 1_000;
/**
 * How long a pass waits after a slot frees while every slot was taken (a backlog): attempts ending meanwhile free
 * theirs, and one claim fills them all, instead of one claim per delivery.
 */
const SLOT_CLAIM_DELAY_MS = 20;
/** A retry waiting for a newer balance alert (newerBalanceAlert) is asked again this long after that one is due. */
const NEWER_ALERT_WAIT_MS = 1_000;

interface ClaimedRow {
  id: string;
  account_id: string;
  channel: Channel;
  content: NotificationContent;
  attempts: number;
  created_at: Date;
  /** When retrying ends (created_at + the retry window). */
  give_up_at: Date;
  /** A webhook's receiver as the claim read it (webhookReceiverSql); null for an email. */
  receiver: string | null;
  /** The trace context and request id of the event the delivery was decided for (null: none). */
  trace_context: TraceCarrier | null;
}

interface Destination {
  email: string | null;
  webhook_url: string | null;
  webhook_secret: string | null;
  /** The account's current cycle as last seen (account_cycles), null when none. */
  current_cycle_id: string | null;
  /** Its choice of notification types now (notification_settings.preferences). */
  preferences: TypePreferences;
}

/**
 * Alerts about a cycle's balance: stale once the next cycle started (its allowance renewed them away), and a retry of
 * one once a newer one was delivered on its channel (it waits while a newer one is pending).
 */
const CYCLE_ALERTS: ReadonlySet<string> = new Set(['low_credit', 'credits_depleted']);

/**
 * A webhook URL's receiver in SQL: its scheme and authority without any user info, lower-cased ('' when there is no URL).
 * What WEBHOOK_HOST_CONCURRENCY counts attempts by.
 */
const webhookReceiverSql = (url: string): string =>
  `coalesce(lower(substring(${url} from '^([A-Za-z][A-Za-z0-9+.-]*://)') || substring(${url} from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^/?#]*)')), '')`;

/**
 * Works off the deliveries table. A claim (FOR UPDATE SKIP LOCKED, so several instances share the work) pushes
 * next_attempt_at forward by a lease and commits; the attempt runs outside any transaction; its outcome is
 * written afterwards. A crash mid-attempt leaves the row pending: it is retried when the lease ends.
 *
 * An attempt ends before its lease does: each send has a deadline (SMTP_TIMEOUT_MS, WEBHOOK_TIMEOUT_MS), cut to what
 * is left of the lease less a margin, and an attempt with no time left is not started (the row is taken again when
 * the lease ends). So two dispatchers never send the same delivery at once, however slowly a server answers.
 *
 * At-least-once window: if the process dies after the receiver accepted (SMTP 250 / HTTP 2xx) but before the
 * outcome is written, the notification is sent again after the lease. Emails carry a stable Message-ID and
 * webhooks a stable webhook-id (the notification id) so receivers can drop that duplicate.
 */
@Injectable()
export class DeliveryDispatcher implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly s: string;
  private readonly schedule: RetrySchedule;
  private readonly leaseMs: number;
  private readonly mailer: Mailer;
  private readonly webhooks: WebhookSender;
  private timer: NodeJS.Timeout | undefined;
  /** The claim pass in progress, if any. */
  private running: Promise<void> | undefined;
  /** The attempts under way: at most DISPATCH_BATCH_SIZE, each ending on its own (a slow receiver holds only its slot). */
  private readonly inFlight = new Set<Promise<void>>();
  /** Webhook attempts under way per receiver: at most WEBHOOK_HOST_CONCURRENCY each. */
  private readonly perReceiver = new Map<string, number>();
  /** Every slot was taken at the last pass: the next pass starts shortly after an attempt ends (slotFreed). */
  private waitingForSlot = false;
  private stopped = false;
  /**
   * Purges old settled deliveries on a loop of its own: a purge goes on batch after batch until none is left (years of
   * rows on a first start, or a batch waiting on a lock), and sending must not wait for it.
   */
  private readonly purgeLoop: PollingLoop;

  constructor(
    private readonly config: NotificationConfig,
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly secrets: WebhookSecretBox,
  ) {
    this.s = quoteIdentifier(config.DATABASE_SCHEMA);
    this.schedule = {
      baseDelayMs: config.RETRY_BASE_DELAY_MS,
      maxDelayMs: config.RETRY_MAX_DELAY_MS,
      maxRetryMs: config.WEBHOOK_MAX_RETRY_HOURS * 3_600_000,
    };
    this.leaseMs = Math.max(config.WEBHOOK_TIMEOUT_MS, config.SMTP_TIMEOUT_MS) + LEASE_MARGIN_MS;
    this.mailer = new Mailer(config);
    this.webhooks = new WebhookSender({ allowlist: config.WEBHOOK_HTTP_ALLOWLIST });
    this.purgeLoop = new PollingLoop('delivery-purge', PURGE_INTERVAL_MS, () => this.purgeSettled(), logger);
  }

  /** tally_notification_pending_deliveries, tally_notification_oldest_pending_age_seconds: read at scrape time. */
  private readonly backlog: DeliveryBacklogSource = {
    backlog: async () => {
      const { rows: [row] } = await this.pool.query<{ pending: number; oldest_age_seconds: number }>(
        `SELECT count(*)::int AS pending, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age_seconds
           FROM ${this.s}.deliveries WHERE state = 'pending'`,
      );
      return { pending: Number(row.pending), oldestAgeSeconds: Math.max(0, Number(row.oldest_age_seconds)) };
    },
  };

  onApplicationBootstrap(): void {
    deliveryBacklogSources.add(this.backlog);
    this.scheduleTick(0);
    this.purgeLoop.start();
  }

  async onModuleDestroy(): Promise<void> {
    deliveryBacklogSources.delete(this.backlog);
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.all([this.running, this.purgeLoop.stop()]);
    await Promise.all(this.inFlight);
  }

  /**
   * One pass: claims as many due deliveries as there are free slots (DISPATCH_BATCH_SIZE less the attempts under way)
   * and starts their attempts, without waiting for them: each frees its slot when it ends. Returns whether every free
   * slot was filled (more may be due).
   */
  private async dispatchDue(): Promise<boolean> {
    const free = this.config.DISPATCH_BATCH_SIZE - this.inFlight.size;
    if (free <= 0) return true;
    const leaseEnd = new Date(this.clock.now().getTime() + this.leaseMs);
    const claimed = await this.claim(leaseEnd, free);
    const rows = await this.withinReceiverLimit(claimed, leaseEnd);
    for (const row of rows) {
      const { receiver } = row;
      if (receiver !== null) this.perReceiver.set(receiver, (this.perReceiver.get(receiver) ?? 0) + 1);
      const attempt: Promise<void> = this.attempt(row, leaseEnd)
        // Its result not recorded (logged where it happened): the row is taken again when its lease ends, unless its
        // retry window is over (an attempt that throws every time must not be taken again for ever).
        .catch(async (error: unknown) => {
          this.logger.error({ err: error, deliveryId: row.id, accountId: row.account_id }, 'delivery attempt failed');
          if (row.give_up_at.getTime() <= this.clock.now().getTime()) await this.giveUp(row, leaseEnd, error);
        })
        .finally(() => {
          this.inFlight.delete(attempt);
          if (receiver !== null) {
            const left = (this.perReceiver.get(receiver) ?? 1) - 1;
            if (left > 0) this.perReceiver.set(receiver, left);
            else this.perReceiver.delete(receiver);
          }
          this.slotFreed();
        });
      this.inFlight.add(attempt);
    }
    return claimed.length >= free;
  }

  /**
   * The claimed rows whose receiver has room (WEBHOOK_HOST_CONCURRENCY less its attempts under way); the others, more of
   * one receiver than it has room for in one claim, are due again at once. The claim already passed over receivers
   * with no room, so they do not come back first.
   */
  private async withinReceiverLimit(rows: ClaimedRow[], leaseEnd: Date): Promise<ClaimedRow[]> {
    const room = new Map<string, number>();
    const taken: ClaimedRow[] = [];
    const back: string[] = [];
    for (const row of rows) {
      if (row.receiver === null) {
        taken.push(row);
        continue;
      }
      const left = room.get(row.receiver) ?? this.config.WEBHOOK_HOST_CONCURRENCY - (this.perReceiver.get(row.receiver) ?? 0);
      room.set(row.receiver, left - 1);
      if (left > 0) taken.push(row);
      else back.push(row.id);
    }
    if (back.length > 0) {
      await this.pool
        .query(`UPDATE ${this.s}.deliveries SET next_attempt_at = $2 WHERE id = ANY($1::uuid[]) AND state = 'pending' AND next_attempt_at = $3`, [back, this.clock.now(), leaseEnd])
        .catch((error: unknown) => this.logger.warn({ err: error, deliveries: back.length }, 'deliveries over their receiver\'s limit not put back: taken again when their lease ends'));
    }
    return taken;
  }

  /** Receivers with no room for another attempt (WEBHOOK_HOST_CONCURRENCY attempts under way): a claim passes them over. */
  private fullReceivers(): string[] {
    return [...this.perReceiver].filter(([, count]) => count >= this.config.WEBHOOK_HOST_CONCURRENCY).map(([receiver]) => receiver);
  }

  /** With every slot taken, the next pass starts shortly after one frees: the slots freed meanwhile share its claim. */
  private slotFreed(): void {
    if (!this.waitingForSlot || this.stopped) return;
    this.waitingForSlot = false;
    this.scheduleTick(SLOT_CLAIM_DELAY_MS);
  }

  private scheduleTick(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.dispatchDue()
        .then((filled) => {
          // Every slot taken: the next pass waits for an attempt to end. Slots filled with some already free again
          // (attempts that ended at once): more may be due, claimed now. Otherwise nothing is due before the interval.
          if (this.inFlight.size >= this.config.DISPATCH_BATCH_SIZE) this.waitingForSlot = true;
          else this.scheduleTick(filled ? 0 : this.config.DISPATCH_INTERVAL_MS);
        })
        .catch((error: unknown) => {
          this.logger.error({ err: error }, 'dispatch pass failed');
          this.scheduleTick(this.config.DISPATCH_INTERVAL_MS);
        });
    }, delayMs);
  }

  /**
   * Deletes settled deliveries (delivered, failed, cancelled) older than DELIVERY_RETENTION_DAYS, a batch per statement,
   * so the table does not grow for ever; returns how many. Pending ones are never touched. Runs on its own loop (at
   * start-up, then hourly; a failed purge is logged and tried again in an hour), beside the dispatch passes.
   */
  async purgeSettled(): Promise<number> {
    const days = this.config.DELIVERY_RETENTION_DAYS;
    if (days === 0) return 0;
    const before = new Date(this.clock.now().getTime() - days * 86_400_000);
    const purged = await deleteInBatches(
      async () =>
        (
          await this.pool.query(
            `DELETE FROM ${this.s}.deliveries WHERE id IN (
               SELECT id FROM ${this.s}.deliveries WHERE state <> 'pending' AND updated_at < $1 ORDER BY updated_at LIMIT ${PURGE_BATCH})`,
            [before],
          )
        ).rowCount ?? 0,
      PURGE_BATCH,
      () => this.stopped,
    );
    if (purged > 0) this.logger.info({ purged, settledBefore: before.toISOString() }, 'old settled deliveries purged');
    return purged;
  }

  /**
   * An attempt that ended with no outcome recorded (it threw: content this version cannot render, say) once the
   * delivery's retry window is over: failed, the error in its last error, as a recorded outcome would have given up.
   */
  private async giveUp(row: ClaimedRow, leaseEnd: Date, error: unknown): Promise<void> {
    await this.pool
      .query(
        `UPDATE ${this.s}.deliveries SET state = 'failed', next_attempt_at = NULL, updated_at = $3, last_error = $4
          WHERE id = $1 AND state = 'pending' AND next_attempt_at = $2`,
        [row.id, leaseEnd, this.clock.now(), truncateText(`gave up: its retry window is over and its attempt ended with no outcome: ${(error as Error)?.message ?? String(error)}`, 500)],
      )
      .then(
        ({ rowCount }) => {
          // Nothing changed: the row is no longer this attempt's (cancelled meanwhile, or its lease taken over).
          if (!rowCount) return;
          this.logger.error({ deliveryId: row.id, accountId: row.account_id }, 'delivery failed: its retry window is over');
          deliveryAttempts.inc({ channel: row.channel, outcome: 'failed' });
        },
        (failure: unknown) => this.logger.error({ err: failure, deliveryId: row.id }, 'delivery not failed: taken again when its lease ends'),
      );
  }

  private async claim(leaseEnd: Date, limit: number): Promise<ClaimedRow[]> {
    const now = this.clock.now();
    const { rows } = await this.pool.query<ClaimedRow>(
      `WITH due AS (
         SELECT d.id, CASE WHEN d.channel = 'webhook' THEN ${webhookReceiverSql('s.webhook_url')} END AS receiver
           FROM ${this.s}.deliveries d LEFT JOIN ${this.s}.notification_settings s ON s.account_id = d.account_id AND d.channel = 'webhook'
          WHERE d.state = 'pending' AND d.next_attempt_at <= $1
            AND (d.channel <> 'webhook' OR ${webhookReceiverSql('s.webhook_url')} <> ALL($4::text[]))
          ORDER BY d.next_attempt_at
          LIMIT $2
          FOR UPDATE OF d SKIP LOCKED
       )
       UPDATE ${this.s}.deliveries d SET next_attempt_at = $3, updated_at = $1
         FROM due WHERE d.id = due.id
       RETURNING d.id, d.account_id, d.channel, d.content, d.attempts, d.created_at, d.give_up_at, d.trace_context, due.receiver`,
      [now, limit, leaseEnd, this.fullReceivers()],
    );
    return rows;
  }

  /**
   * One attempt, in the context of the event that caused it (README "Tracing"): its log lines carry that request id
   * and trace id, and when tracing is on a `notification deliver` span continues the trace.
   */
  private async attempt(row: ClaimedRow, leaseEnd: Date): Promise<void> {
    const traced = continueTrace(`notification deliver ${row.channel}`, SpanKind.CLIENT, row.trace_context ?? undefined, {
      'tally.account_id': row.account_id, 'tally.delivery_id': row.id, 'tally.channel': row.channel, 'tally.attempt': row.attempts + 1,
    });
    // Untraced (tracing off or not sampled): still in the event's context, so log lines, the webhook's and the
    // email's headers carry its request id and the caller's traceparent.
    if (!traced) return context.with(contextOf(row.trace_context ?? undefined), () => this.attemptInContext(row, leaseEnd));
    try {
      await context.with(traced.ctx, () => this.attemptInContext(row, leaseEnd));
      endSpan(traced.span);
    } catch (error) {
      endSpan(traced.span, error);
      throw error;
    }
  }

  private async attemptInContext(row: ClaimedRow, leaseEnd: Date): Promise<void> {
    const started = this.clock.now();
    const destination = await this.destination(row.account_id);
    const log = { accountId: row.account_id, deliveryId: row.id, channel: row.channel, type: row.content.type };
    // A low-credit or depletion alert of a cycle that has ended since (its first attempt failed, or the consumer
    // caught up across the boundary) would tell of a balance the renewal has replaced.
    const superseded = CYCLE_ALERTS.has(row.content.type) && row.content.cycleId !== undefined && destination?.current_cycle_id != null
      && destination.current_cycle_id !== row.content.cycleId;
    // Its cycle has ended, and the renewal not reached this service yet (the scheduler and the ledger take under a
    // second, an outage of them longer): it would tell of a balance the renewal replaces, and of a reset date past.
    const ended = !superseded && CYCLE_ALERTS.has(row.content.type) && row.content.resetsAt !== undefined && Date.parse(row.content.resetsAt) <= started.getTime();
    // Turned off since it was queued (a retry pending, a backlog): the account no longer wants it.
    const unwanted = destination !== undefined && effectivePreferences(destination.preferences)[row.content.type] === false;
    const newer = !superseded && !ended && row.attempts > 0 && CYCLE_ALERTS.has(row.content.type) ? await this.newerBalanceAlert(row) : undefined;
    let outcome: AttemptOutcome | { cancelled: string };
    if (superseded) {
      outcome = { cancelled: `superseded: cycle ${destination.current_cycle_id} started after cycle ${row.content.cycleId} this alert is about` };
    } else if (ended) {
      outcome = { cancelled: `superseded: cycle ${row.content.cycleId} ended at ${row.content.resetsAt}; its renewal replaces the balance this alert is about` };
    } else if (newer?.delivered) {
      outcome = { cancelled: 'superseded: a newer balance alert was delivered on this channel; this retry would arrive after it' };
    } else if (unwanted) {
      outcome = { cancelled: `the account turned ${row.content.type} notifications off` };
    } else if (newer?.pendingUntil && row.give_up_at.getTime() > started.getTime()) {
      // Not yet known whether the newer one reaches the account (credits coming back may cancel it, its receiver may
      // refuse it for good): this retry waits for it, asked again once it is tried, at least every RETRY_MAX_DELAY_MS,
      // and not past its own retry window (then it is tried: the wait never outlasts WEBHOOK_MAX_RETRY_HOURS).
      const until = new Date(Math.min(
        newer.pendingUntil.getTime() + NEWER_ALERT_WAIT_MS,
        this.clock.now().getTime() + this.config.RETRY_MAX_DELAY_MS,
        row.give_up_at.getTime(),
      ));
      await this.recordResult(
        `UPDATE ${this.s}.deliveries SET next_attempt_at = $2, updated_at = $3 WHERE id = $1 AND state = 'pending' AND next_attempt_at = $4`,
        [row.id, until, this.clock.now(), leaseEnd],
        leaseEnd,
        log,
      );
      this.logger.info({ ...log, nextAttemptAt: until.toISOString() }, 'retry waits for a newer balance alert on its channel');
      return;
    } else {
      // Taken after the reads above: should they have used up what the lease had left (a slow database), a send
      // started now could outlast the lease and another dispatcher's.
      const deadlineMs = this.sendDeadlineMs(row, leaseEnd);
      if (deadlineMs <= 0) {
        this.logger.warn({ ...log, leaseEnd: leaseEnd.toISOString() }, 'attempt not started: its lease has no time left for a send (taken again when the lease ends)');
        return;
      }
      if (row.channel === 'email') {
        outcome = destination?.email ? await this.mailer.send(destination.email, row.content, deadlineMs) : { cancelled: 'the email channel is no longer configured' };
      } else {
        outcome = destination?.webhook_url && destination.webhook_secret
          ? await this.sendWebhook(row, destination.webhook_url, destination.webhook_secret, started, deadlineMs)
          : { cancelled: 'the webhook channel is no longer configured' };
      }
    }
    const finished = this.clock.now();
    if ('cancelled' in outcome) {
      await this.recordResult(
        `UPDATE ${this.s}.deliveries SET state = 'cancelled', next_attempt_at = NULL, last_error = $2, updated_at = $3
          WHERE id = $1 AND state = 'pending' AND next_attempt_at = $4`,
        [row.id, outcome.cancelled, finished, leaseEnd],
        leaseEnd,
        log,
      );
      this.logger.info({ ...log, reason: outcome.cancelled }, 'delivery cancelled');
      deliveryAttempts.inc({ channel: row.channel, outcome: 'cancelled' });
      return;
    }
    const attempts = row.attempts + 1;
    deliveryDuration.observe({ channel: row.channel }, (finished.getTime() - started.getTime()) / 1000);
    const record: AttemptRecord = {
      at: started.toISOString(),
      durationMs: finished.getTime() - started.getTime(),
      ...(outcome.statusCode !== undefined ? { statusCode: outcome.statusCode } : {}),
      ...(outcome.kind !== 'delivered' ? { error: truncateText(outcome.error, 500) } : {}),
    };
    if (outcome.kind === 'delivered') {
      // Also over a cancel the consumer wrote while this attempt was under way (credits came back; it leaves the
      // lease): what was delivered is recorded as delivered.
      await this.recordResult(
        `UPDATE ${this.s}.deliveries
            SET state = 'delivered', attempts = $2, attempt_log = attempt_log || $3::jsonb, next_attempt_at = NULL,
                delivered_at = $4, updated_at = $4, last_error = NULL
          WHERE id = $1 AND state IN ('pending', 'cancelled') AND next_attempt_at = $5`,
        [row.id, attempts, JSON.stringify([record]), finished, leaseEnd],
        leaseEnd,
        log,
      );
      this.logger.info({ ...log, attempts, statusCode: outcome.statusCode }, `${row.channel} delivered`);
      deliveryAttempts.inc({ channel: row.channel, outcome: 'delivered' });
      return;
    }
    const next = nextAttemptAt(this.schedule, outcome, attempts, row.created_at, finished);
    await this.recordResult(
      `UPDATE ${this.s}.deliveries
          SET state = $2, attempts = $3, attempt_log = attempt_log || $4::jsonb, next_attempt_at = $5, last_error = $6, updated_at = $7
        WHERE id = $1 AND state = 'pending' AND next_attempt_at = $8`,
      [row.id, next ? 'pending' : 'failed', attempts, JSON.stringify([record]), next ?? null, record.error ?? null, finished, leaseEnd],
      leaseEnd,
      log,
    );
    deliveryAttempts.inc({ channel: row.channel, outcome: next ? 'retrying' : 'failed' });
    const error = outcome.detail ?? record.error;
    if (next) this.logger.warn({ ...log, attempts, statusCode: outcome.statusCode, error, nextAttemptAt: next.toISOString() }, `${row.channel} attempt failed: will retry`);
    else this.logger.error({ ...log, attempts, statusCode: outcome.statusCode, error }, `${row.channel} delivery failed: giving up`);
  }

  /**
   * How long a send started now may take: its channel's timeout, cut to what is left of the lease less half the margin
   * (the result's write needs the rest). Taken just before the send, after every read the attempt makes first.
   */
  private sendDeadlineMs(row: ClaimedRow, leaseEnd: Date): number {
    const timeoutMs = row.channel === 'email' ? this.config.SMTP_TIMEOUT_MS : this.config.WEBHOOK_TIMEOUT_MS;
    return Math.min(timeoutMs, leaseEnd.getTime() - this.clock.now().getTime() - LEASE_MARGIN_MS / 2);
  }

  /**
   * The newer low-credit or depletion alerts (a lower threshold, depletion) on the channel of one about to be tried
   * again: one delivered supersedes the retry, which would arrive after it and tell of a balance left behind ("below
   * 20%" after "out of credits"); one pending (the latest time it is due) makes the retry wait until it is settled. A
   * newer one cancelled (credits came back above it) or failed (given up) reaches nobody: the older retry is still what
   * the account should hear, so it is sent. First attempts are not asked: two crossed together are both sent.
   */
  private async newerBalanceAlert(row: ClaimedRow): Promise<{ delivered: boolean; pendingUntil: Date | null } | undefined> {
    if (row.content.streamVersion === undefined) return undefined;
    const { rows: [newer] } = await this.pool.query<{ delivered: boolean; pending_until: Date | null }>(
      `SELECT bool_or(state = 'delivered') AS delivered, max(next_attempt_at) FILTER (WHERE state = 'pending') AS pending_until
         FROM ${this.s}.deliveries
        WHERE account_id = $1 AND channel = $2 AND notification_type = ANY($3::text[]) AND (content->>'streamVersion')::bigint > $4
          AND state IN ('pending', 'delivered')`,
      [row.account_id, row.channel, [...CYCLE_ALERTS], row.content.streamVersion],
    );
    return { delivered: newer.delivered === true, pendingUntil: newer.pending_until };
  }

  /**
   * Records an attempt's result while this attempt still holds the row's lease (`next_attempt_at` is the lease end its
   * claim set: a dispatcher whose lease has passed, and another has claimed the row, writes nothing). A write that
   * fails (PostgreSQL restarting, a connection lost) is tried again until the lease ends: a result sent but not
   * recorded would have the delivery sent a second time when its lease ends.
   */
  private async recordResult(text: string, params: unknown[], leaseEnd: Date, log: Record<string, unknown>): Promise<void> {
    const giveUpAt = Date.now() + Math.max(0, leaseEnd.getTime() - this.clock.now().getTime() - RESULT_WRITE_MARGIN_MS);
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.pool.query(text, params);
        return;
      } catch (error) {
        const left = giveUpAt - Date.now();
        if (left <= 0) {
          this.logger.error({ ...log, err: error, writeAttempts: attempt }, 'attempt result not recorded before its lease ends: the delivery will be attempted again');
          throw error;
        }
        this.logger.warn({ ...log, err: error, writeAttempt: attempt }, 'attempt result not recorded yet: retrying');
        await sleep(Math.min(RESULT_WRITE_RETRY_MS * attempt, left));
      }
    }
  }

  /**
   * A secret that cannot be opened fails the attempt with the reason, not the worker: retried when it was sealed with
   * a key this instance does not have (during a rolling key rotation another instance may already have resealed it
   * with the new key; an instance that has it will deliver), permanently when it is altered.
   */
  private sendWebhook(row: ClaimedRow, url: string, storedSecret: string, now: Date, deadlineMs: number): Promise<AttemptOutcome> {
    let secret: string;
    try {
      secret = this.secrets.open(storedSecret, row.account_id);
    } catch (error) {
      const keyId = this.secrets.keyIdOf(storedSecret);
      const kind = keyId !== undefined && !this.secrets.knows(keyId) ? 'retryable' : 'permanent';
      return Promise.resolve({ kind, error: (error as Error).message });
    }
    return this.webhooks.send(url, secret, row.content, now, deadlineMs);
  }

  private async destination(accountId: string): Promise<Destination | undefined> {
    const { rows } = await this.pool.query<Destination>(
      `SELECT s.email, s.webhook_url, s.webhook_secret, s.preferences, c.cycle_id AS current_cycle_id
         FROM ${this.s}.notification_settings s LEFT JOIN ${this.s}.account_cycles c ON c.account_id = s.account_id
        WHERE s.account_id = $1`,
      [accountId],
    );
    return rows[0];
  }
}

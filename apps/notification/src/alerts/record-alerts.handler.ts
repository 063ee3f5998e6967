import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { LedgerCycleStartedV1 } from '@tally/contracts';
import { context } from '@opentelemetry/api';
import { quoteIdentifier, type Clock, type ConsumedTrace, type Logger } from '@tally/shared';
import type { TypePreferences } from '../notification-type.model';
import { creditsBack, decideNotifications, mayNotify, type KnownCycle, type LedgerEvent, type RecipientSettings } from './notifications.decider';

export interface RecordAlertsOptions {
  schema: string;
  clock: Clock;
  maxRetryMs: number;
  logger: Logger;
}

/**
 * Applies ledger events inside the batch consumer's transaction: remembers cycles (for reset dates) and inserts
 * the deliveries to make. The unique keys (account, type, dedupe key, channel) and (account, event, type, channel)
 * + ON CONFLICT DO NOTHING make a redelivered or re-published event a no-op, also for rows recorded under the
 * older per-cycle dedupe keys; the dispatcher sends what was committed.
 */
export class RecordAlertsHandler {
  private readonly s: string;

  constructor(private readonly options: RecordAlertsOptions) {
    this.s = quoteIdentifier(options.schema);
  }

  /**
   * `traceOf(index)`: the trace context the index-th event arrived with, kept on its deliveries so the dispatcher's
   * attempts continue the trace, and its log lines carry the request id and trace id (README "Tracing").
   */
  async apply(tx: PoolClient, events: LedgerEvent[], traceOf: (index: number) => ConsumedTrace | undefined = () => undefined): Promise<number> {
    let inserted = 0;
    for (const [index, event] of events.entries()) {
      if (event.type === 'CycleStarted') await this.rememberCycle(tx, event.accountId, event.data as LedgerCycleStartedV1);
      const planned = mayNotify(event) ? decideNotifications(event, await this.settings(tx, event.accountId), await this.cycle(tx, event.accountId)) : [];
      const now = this.options.clock.now();
      const traced = planned.length > 0 ? traceOf(index) : undefined;
      const log = (write: () => void) => (traced ? context.with(traced.ctx, write) : write());
      for (const delivery of planned) {
        const id = randomUUID();
        const { rowCount } = await tx.query(
          `INSERT INTO ${this.s}.deliveries
             (id, notification_id, account_id, notification_type, dedupe_key, channel, event_id, content, state,
              attempts, attempt_log, next_attempt_at, give_up_at, created_at, updated_at, trace_context)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, '[]'::jsonb, $9, $10, $9, $9, $11)
           ON CONFLICT DO NOTHING`,
          [
            id, delivery.content.notificationId, event.accountId, delivery.content.type, delivery.dedupeKey, delivery.channel,
            event.id, JSON.stringify(delivery.content), now, new Date(now.getTime() + this.options.maxRetryMs),
            traced ? JSON.stringify(traced.carrier) : null,
          ],
        );
        if (rowCount === 1) {
          inserted += 1;
          log(() => this.options.logger.info(
            { accountId: event.accountId, deliveryId: id, channel: delivery.channel, type: delivery.content.type, eventId: event.id },
            'notification queued',
          ));
        } else {
          log(() => this.options.logger.debug({ accountId: event.accountId, eventId: event.id, channel: delivery.channel, dedupeKey: delivery.dedupeKey }, 'notification already queued'));
        }
      }
      const back = creditsBack(event);
      if (back) await this.cancelLifted(tx, event, back);
    }
    return inserted;
  }

  /**
   * Credits came back: the account's unsent low-credit alerts of that cycle whose threshold the balance is back at
   * or above, and its depletion alerts once anything is available, would tell of a balance it no longer has (their
   * first attempt failed and a retry waits, or the consumer caught up with both at once). Cancelled, the reason in
   * their last error; the ledger announces a threshold crossed again as a new alert. Only alerts of events before
   * this one in the account's stream: a redelivered or replayed older event must not cancel a newer alert. One being
   * sent at this very moment is not stopped; its lease (next_attempt_at) is left, so its delivery is still recorded.
   */
  private async cancelLifted(tx: PoolClient, event: LedgerEvent, back: NonNullable<ReturnType<typeof creditsBack>>): Promise<void> {
    const { rowCount } = await tx.query(
      `UPDATE ${this.s}.deliveries SET state = 'cancelled', last_error = $6, updated_at = $7
        WHERE account_id = $1 AND state = 'pending' AND content->>'cycleId' IS NOT DISTINCT FROM $2
          AND (content->>'streamVersion')::bigint < $5
          AND ((notification_type = 'credits_depleted' AND $3::numeric > 0)
            -- the ledger's isBelowThreshold, not: available × 10,000 ≥ round(percent × 100) × allocation (micro-credits)
            OR (notification_type = 'low_credit' AND $3::numeric * 10000 >= round((content->>'thresholdPercent')::numeric * 100) * $4::numeric))`,
      [
        event.accountId, back.cycleId, back.available.toString(), back.allocation.toString(), back.streamVersion,
        `superseded: credits came back (ledger event ${event.id}, ${event.type}), the balance is no longer below it`, this.options.clock.now(),
      ],
    );
    if (rowCount) this.options.logger.info({ accountId: event.accountId, eventId: event.id, cancelled: rowCount }, 'unsent low-credit alerts cancelled: credits came back');
  }

  private async settings(tx: PoolClient, accountId: string): Promise<RecipientSettings | undefined> {
    const { rows } = await tx.query<{ email: string | null; webhook_url: string | null; has_secret: boolean; preferences: TypePreferences }>(
      `SELECT email, webhook_url, webhook_secret IS NOT NULL AS has_secret, preferences FROM ${this.s}.notification_settings WHERE account_id = $1`,
      [accountId],
    );
    const row = rows[0];
    if (!row) return undefined;
    return { email: row.email, webhookUrl: row.has_secret ? row.webhook_url : null, preferences: row.preferences };
  }

  private async cycle(tx: PoolClient, accountId: string): Promise<KnownCycle | undefined> {
    const { rows } = await tx.query<{ cycle_id: string; period_end: Date; allocation: string }>(
      `SELECT cycle_id, period_end, allocation FROM ${this.s}.account_cycles WHERE account_id = $1`,
      [accountId],
    );
    const row = rows[0];
    return row ? { cycleId: row.cycle_id, periodEnd: row.period_end.toISOString(), allocation: row.allocation } : undefined;
  }

  /** Keeps the latest cycle only; an older CycleStarted replayed late does not move it back. */
  private async rememberCycle(tx: PoolClient, accountId: string, data: LedgerCycleStartedV1): Promise<void> {
    await tx.query(
      `INSERT INTO ${this.s}.account_cycles (account_id, cycle_id, period_start, period_end, allocation)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (account_id) DO UPDATE
         SET cycle_id = excluded.cycle_id, period_start = excluded.period_start, period_end = excluded.period_end, allocation = excluded.allocation
       WHERE ${this.s}.account_cycles.period_start <= excluded.period_start`,
      [accountId, data.cycleId, data.periodStart, data.periodEnd, data.allocation],
    );
  }
}

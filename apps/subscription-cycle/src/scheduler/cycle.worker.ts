import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { Logger } from '@tally/shared';
import { truncateText } from '@tally/contracts';
import { SubscriptionError, decide, evolve, type Catalogue, type SubscriptionState } from '@tally/subscription-domain';
import { SubscriptionCycleConfig } from '../config/subscription-cycle.config';
import { SubscriptionEntity } from '../database/subscription.entity';
import { LOGGER } from '@tally/shared';
import { enqueueEnvelopes } from '../outbox/outbox.repository';
import { SCHEDULER_ACTOR, toEnvelopes } from '../outbox/subscription-event.codec';
import { CATALOGUE } from '../plans/catalogue.provider';
import { rowFromState, stateFromRow } from '../subscriptions/subscription.state';
import { CLOCK, PollingLoop, type Clock } from '@tally/shared';
import { OutboxRelay } from '../outbox/outbox.relay';
import { parkedSources, type ParkedSource } from './scheduler.metrics';

/**
 * The soonest a run asks the next to start (wakeWhenNextDue): a cycle falling due sooner is started that much after
 * its time; a clock that does not move (a test's) cannot make the loop run back to back.
 */
const MIN_WAKE_MS = 100;
/** How long a subscription the decider refuses to tick (e.g. its plan left the catalogue) waits before a retry. */
const PARK_MS = 60 * 60 * 1000;

/**
 * Starts due billing cycles and applies due plan changes. Safe with any number of instances: each batch claims
 * due rows with `FOR UPDATE SKIP LOCKED`, so two instances never tick the same subscription at once, and the
 * Tick, the new state and the outbox messages commit together (a crash loses or duplicates nothing).
 * After downtime a Tick starts only the cycle containing now; missed cycles are not stacked (the decider's rule).
 */
@Injectable()
export class CycleScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly loop: PollingLoop;
  /** tally_subscriptions_parked, tally_subscriptions_parked_oldest_seconds: read at scrape time. */
  private readonly parked: ParkedSource = {
    parked: async () => {
      const [row] = await this.dataSource.query(
        `SELECT count(*)::int AS count, min(parked_at) AS "oldestAt" FROM "${this.config.DATABASE_SCHEMA}".subscriptions WHERE parked_at IS NOT NULL`,
      );
      const oldest = row.oldestAt ? Math.max(0, (this.clock.now().getTime() - new Date(row.oldestAt).getTime()) / 1000) : 0;
      return { count: Number(row.count), oldestSeconds: oldest };
    },
  };

  constructor(
    private readonly dataSource: DataSource,
    private readonly config: SubscriptionCycleConfig,
    @Inject(CATALOGUE) private readonly catalogue: Catalogue,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly outbox: OutboxRelay,
  ) {
    this.loop = new PollingLoop('cycle-scheduler', config.SCHEDULER_INTERVAL_MS, (progressed) => this.runDue(progressed), logger);
  }

  onApplicationBootstrap(): void {
    parkedSources.add(this.parked);
    this.loop.start();
  }

  async onApplicationShutdown(): Promise<void> {
    parkedSources.delete(this.parked);
    await this.loop.stop();
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Readiness: runs that keep failing, or one that never ends, make the service not ready (PollingLoop.check). */
  health(): void {
    this.loop.check();
  }

  /**
   * Ticks every subscription due now, batch by batch (`progressed` after each), then has the loop wake when the next
   * one falls due if that is before its interval; returns how many were ticked.
   */
  async runDue(progressed: () => void = () => undefined): Promise<number> {
    const now = this.clock.now();
    let total = 0;
    for (;;) {
      const claimed = await this.runBatch(now);
      progressed();
      total += claimed;
      if (claimed < this.config.SCHEDULER_BATCH) break;
    }
    if (total > 0) this.outbox.wakeNow(); // the new cycles' messages committed: on their way at once
    // The run's work is done and committed: a failure to read when the next is due leaves the interval, no more.
    await this.wakeWhenNextDue(now).catch((error: unknown) => this.logger.warn({ err: error }, 'next due time not read; next run at the interval'));
    return total;
  }

  /**
   * A cycle ends at its period end: until the ledger has the next CycleStarted, the account's allowance has expired
   * and its holds are refused. So the next run starts when the next subscription falls due, not up to an interval
   * later. Only due times after this run's `now`: a row still due now (another instance holds it) waits for the
   * interval, never a run straight after this one.
   */
  private async wakeWhenNextDue(now: Date): Promise<void> {
    const next = await this.dataSource
      .getRepository(SubscriptionEntity)
      .createQueryBuilder('s')
      .select('min(s.next_due_at)', 'nextDueAt')
      .where('s.next_due_at > :now', { now })
      .getRawOne<{ nextDueAt: Date | null }>();
    if (next?.nextDueAt) this.loop.wakeIn(Math.max(MIN_WAKE_MS, new Date(next.nextDueAt).getTime() - this.clock.now().getTime()));
  }

  private runBatch(now: Date): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const due = await manager
        .getRepository(SubscriptionEntity)
        .createQueryBuilder('s')
        .where('s.next_due_at <= :now', { now })
        .orderBy('s.next_due_at', 'ASC')
        .limit(this.config.SCHEDULER_BATCH)
        .setLock('pessimistic_write')
        .setOnLocked('skip_locked')
        .getMany();
      for (const row of due) await this.tick(manager, row, now);
      return due.length;
    });
  }

  private async tick(manager: EntityManager, row: SubscriptionEntity, now: Date): Promise<void> {
    const state = stateFromRow(row);
    let events;
    try {
      events = decide({ type: 'Tick', data: { accountId: row.accountId } }, state, { now, catalogue: this.catalogue });
    } catch (error) {
      if (!(error instanceof SubscriptionError)) throw error;
      // One broken subscription must not stall the others: park it and say why.
      this.logger.error({ accountId: row.accountId, code: error.code, err: error }, 'subscription cannot be ticked; parked');
      await manager.update(SubscriptionEntity, { accountId: row.accountId }, {
        nextDueAt: new Date(now.getTime() + PARK_MS),
        parkedAt: row.parkedAt ?? now, // parked since it first was: tally_subscriptions_parked_oldest_seconds
        parkedReason: truncateText(`${error.code}: ${error.message}`, 500),
      });
      return;
    }
    const next = events.reduce<SubscriptionState>(evolve, state);
    if (next.status !== 'active') throw new Error(`tick left account ${row.accountId} without a subscription`);
    await manager.save(rowFromState(next, row));
    await enqueueEnvelopes(manager, this.config.SUBSCRIPTION_EVENTS_TOPIC, toEnvelopes(events, this.catalogue, now, SCHEDULER_ACTOR));
    for (const event of events) {
      if (event.type === 'CycleStarted') {
        this.logger.info({ accountId: row.accountId, cycleId: event.data.cycleId, planId: event.data.planId, periodStart: event.data.periodStart }, 'cycle started');
      } else {
        this.logger.info({ accountId: row.accountId, event: event.type }, 'subscription changed by scheduler');
      }
    }
  }
}

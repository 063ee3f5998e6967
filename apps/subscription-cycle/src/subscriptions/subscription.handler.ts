import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { ID_PATTERN } from '@tally/contracts';
import { isUniqueViolation, retriedOnInsertRace, type Logger } from '@tally/shared';
import {
  canonicalZone,
  cycleAt,
  decide,
  evolve,
  isValidZone,
  type Catalogue,
  type SubscriptionCommand,
  type SubscriptionEvent,
  type SubscriptionState,
} from '@tally/subscription-domain';
import { SubscriptionCycleConfig } from '../config/subscription-cycle.config';
import { SubscriptionEntity } from '../database/subscription.entity';
import { LOGGER } from '@tally/shared';
import { OutboxRelay } from '../outbox/outbox.relay';
import { enqueueEnvelopes } from '../outbox/outbox.repository';
import { SCHEDULER_ACTOR, toEnvelopes } from '../outbox/subscription-event.codec';
import { CATALOGUE } from '../plans/catalogue.provider';
import { SubscriptionCycleError, fromDomainError } from '../subscription-cycle.errors';
import { CLOCK, type Clock } from '@tally/shared';
import type { PutSubscriptionRequestDto, PutSubscriptionResponseDto, SubscriptionResponseDto } from './subscription.dto';
import { rowFromState, stateFromRow } from './subscription.state';
import { SubscriptionRequests, type KeyedRequest } from './subscription-requests.repository';

type Active = Extract<SubscriptionState, { status: 'active' }>;

/** What a PUT or DELETE answers; `replayed`: the stored first answer to a retry under its idempotency key. */
export interface SubscriptionAnswer {
  body: PutSubscriptionResponseDto;
  replayed: boolean;
}

export function assertAccountId(accountId: string): void {
  // Account ids as every service takes them; a cycle or change id stays within 128 (boundedId).
  if (!ID_PATTERN.test(accountId)) {
    throw new SubscriptionCycleError('INVALID_ACCOUNT_ID', 'The account id is malformed.', [
      { field: 'accountId', reason: 'must be 1-128 characters of letters, digits and . _ : @ -' },
    ]);
  }
}

/**
 * Subscribe / change plan / cancel: each runs the pure decider on the account's row, locked for the
 * transaction, and saves the new state with the outbox messages in one commit. A refused command writes nothing.
 */
@Injectable()
export class SubscriptionHandler {
  constructor(
    private readonly dataSource: DataSource,
    private readonly config: SubscriptionCycleConfig,
    @Inject(CATALOGUE) private readonly catalogue: Catalogue,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly outbox: OutboxRelay,
    private readonly requests: SubscriptionRequests,
  ) {}

  /**
   * PUT: subscribe, or change the plan of an existing subscription. `actor`: the API key's name, on the messages it
   * causes. With an idempotency key, a retry gets the first answer (replayed) instead of being decided again.
   */
  put(accountId: string, body: PutSubscriptionRequestDto, actor?: string, idempotencyKey?: string): Promise<SubscriptionAnswer> {
    assertAccountId(accountId);
    const keyed = idempotencyKey === undefined ? undefined : { key: idempotencyKey, request: canonicalPut(body) };
    return this.execute(accountId, actor, keyed, (state) => {
      this.validatePlanRequest(body);
      if (state.status === 'none') {
        if (body.timeZone === undefined) {
          throw new SubscriptionCycleError('TIME_ZONE_REQUIRED', 'A time zone is required to subscribe.', [{ field: 'timeZone', reason: 'is required to subscribe' }]);
        }
        return { type: 'Subscribe', data: { accountId, planId: body.planId, zone: body.timeZone } };
      }
      if (body.timeZone !== undefined && canonicalZone(body.timeZone) !== canonicalZone(state.zone)) {
        throw new SubscriptionCycleError('TIME_ZONE_IMMUTABLE', `The subscription's time zone is ${state.zone}; it cannot be changed by a plan change.`, [
          { field: 'timeZone', reason: `must be ${state.zone} (the subscription's time zone) or left out` },
        ]);
      }
      return { type: 'ChangePlan', data: { accountId, planId: body.planId } };
    });
  }

  /**
   * DELETE: cancel at the end of the current cycle, or a yearly plan's paid year, or with `immediately` now (the
   * allowance under way expires); then the catalogue's fallback plan. An idempotency key as for PUT.
   */
  cancel(accountId: string, actor?: string, immediately = false, idempotencyKey?: string): Promise<SubscriptionAnswer> {
    assertAccountId(accountId);
    const keyed = idempotencyKey === undefined ? undefined : { key: idempotencyKey, request: JSON.stringify({ method: 'DELETE', effective: immediately ? 'now' : 'cycle-end' }) };
    return this.execute(accountId, actor, keyed, (state) => {
      if (state.status === 'none') throw notFound(accountId);
      return { type: 'Cancel', data: { accountId, ...(immediately && { immediately }) } };
    });
  }

  async get(accountId: string): Promise<SubscriptionResponseDto> {
    assertAccountId(accountId);
    const row = await this.dataSource.getRepository(SubscriptionEntity).findOneBy({ accountId });
    const state = stateFromRow(row);
    if (state.status === 'none') throw notFound(accountId);
    return this.view(state);
  }

  private validatePlanRequest(body: PutSubscriptionRequestDto): void {
    const plan = this.catalogue.plans.get(body.planId);
    if (!plan) {
      throw new SubscriptionCycleError('UNKNOWN_PLAN', 'There is no plan with this id.', [{ field: 'planId', reason: `is not a plan of catalogue ${this.catalogue.version}` }]);
    }
    if (body.timeZone !== undefined && !isValidZone(body.timeZone)) {
      throw new SubscriptionCycleError('INVALID_TIME_ZONE', 'The time zone is not an IANA time zone.', [{ field: 'timeZone', reason: 'must be an IANA time zone such as America/New_York' }]);
    }
    if (body.interval !== undefined && body.interval !== plan.interval) {
      throw new SubscriptionCycleError('INTERVAL_MISMATCH', `Plan ${plan.id} is billed ${plan.interval}.`, [{ field: 'interval', reason: `must be ${plan.interval} for plan ${plan.id}` }]);
    }
  }

  private async execute(
    accountId: string,
    actor: string | undefined,
    keyed: KeyedRequest | undefined,
    command: (state: SubscriptionState) => SubscriptionCommand,
  ): Promise<SubscriptionAnswer> {
    // A first subscription has no row to lock; two racing inserts meet on the primary key and the loser retries,
    // then sees the winner's row.
    try {
      const response = await retriedOnInsertRace(() => this.dataSource.transaction((manager) => this.decideAndSave(manager, accountId, actor, keyed, command)));
      // Its messages are committed: on their way now, not at the relay's next interval (a first cycle or an upgrade's
      // CycleStarted is the account's allowance; its holds are refused until the ledger has it).
      if (!response.replayed) this.outbox.wakeNow();
      return response;
    } catch (error) {
      if (isUniqueViolation(error)) throw new SubscriptionCycleError('CONCURRENT_UPDATE', 'The subscription changed concurrently; retry.');
      throw fromDomainError(error);
    }
  }

  private async decideAndSave(
    manager: EntityManager,
    accountId: string,
    actor: string | undefined,
    keyed: KeyedRequest | undefined,
    command: (state: SubscriptionState) => SubscriptionCommand,
  ): Promise<SubscriptionAnswer> {
    const now = this.clock.now();
    const row = await manager
      .getRepository(SubscriptionEntity)
      .createQueryBuilder('s')
      .where('s.account_id = :accountId', { accountId })
      .setLock('pessimistic_write')
      .getOne();
    const first = keyed && (await this.requests.answered(manager, accountId, keyed));
    if (first) {
      this.logger.info({ accountId, idempotencyKey: keyed.key, outcome: first.outcome }, 'subscription request replayed');
      return { body: first, replayed: true };
    }
    const state = stateFromRow(row);
    const cmd = command(state);
    const events = decide(cmd, state, { now, catalogue: this.catalogue });
    const next = events.reduce<SubscriptionState>(evolve, state);
    if (next.status !== 'active') throw new Error(`${cmd.type} left account ${accountId} without a subscription`);
    if (events.length > 0) {
      if (row) await manager.save(rowFromState(next, row));
      else await manager.insert(SubscriptionEntity, rowFromState(next, null));
      // A scheduled change that was due, applied first (the decider's afterDueChange), is the scheduler's doing, as on time.
      const own = ownFrom(events);
      const envelopes = [...toEnvelopes(events.slice(0, own), this.catalogue, now, SCHEDULER_ACTOR), ...toEnvelopes(events.slice(own), this.catalogue, now, actor)];
      await enqueueEnvelopes(manager, this.config.SUBSCRIPTION_EVENTS_TOPIC, envelopes);
    }
    const outcome = outcomeOf(events);
    const body = { ...this.view(next, now), outcome };
    if (keyed) await this.requests.save(manager, accountId, keyed, body);
    this.logger.info({ accountId, command: cmd.type, outcome, planId: next.planId, events: events.map((e) => e.type) }, 'subscription command applied');
    return { body, replayed: false };
  }

  private view(state: Active, now = this.clock.now()): SubscriptionResponseDto {
    const cycle = cycleAt({ at: state.anchor, zone: state.zone }, now);
    return {
      accountId: state.accountId,
      planId: state.planId,
      interval: this.catalogue.plans.get(state.planId)?.interval ?? 'monthly',
      timeZone: state.zone,
      anchor: state.anchor,
      currentCycle: { index: cycle.index, start: cycle.start.toISOString(), end: cycle.end.toISOString() },
      pendingChange: state.pending
        ? { planId: state.pending.toPlanId, kind: state.pending.kind, effectiveAt: state.pending.effectiveAt.toISOString() }
        : null,
    };
  }
}

/** A PUT as a retry must repeat it: the time zone by its canonical name, so another spelling of it is the same request. */
function canonicalPut(body: PutSubscriptionRequestDto): string {
  const zone = body.timeZone === undefined ? null : isValidZone(body.timeZone) ? canonicalZone(body.timeZone) : body.timeZone;
  return JSON.stringify({ method: 'PUT', planId: body.planId, interval: body.interval ?? null, timeZone: zone });
}

function notFound(accountId: string): SubscriptionCycleError {
  return new SubscriptionCycleError('SUBSCRIPTION_NOT_FOUND', `Account ${accountId} has no subscription.`);
}

/**
 * Where the command's own events begin: before them, a scheduled change already due that the decider applied first
 * (afterDueChange: its PlanChanged, a downgrade or a cancel, and the cycle it starts) is the scheduler's work.
 */
function ownFrom(events: SubscriptionEvent[]): number {
  const own = events.findIndex((event) => event.type !== 'CycleStarted' && !(event.type === 'PlanChanged' && (event.data.kind === 'downgrade' || event.data.kind === 'cancel')));
  return own === -1 ? events.length : own;
}

/** What the command did (its own events, see ownFrom). */
function outcomeOf(events: SubscriptionEvent[]): string {
  const own = events[ownFrom(events)];
  switch (own?.type) {
    case 'Subscribed':
      return 'subscribed';
    case 'PlanChanged':
      return own.data.kind === 'terminate' ? 'cancelled' : 'upgraded';
    case 'PlanChangeScheduled':
      return own.data.kind === 'cancel' ? 'cancel-scheduled' : 'downgrade-scheduled';
    case 'PlanChangeCancelled':
      return 'change-cancelled';
    default:
      return 'unchanged';
  }
}

import type { Logger } from 'pino';
import { isDue, remembered } from '@tally/ledger-domain';
import { DEFAULT_LOOP_READINESS, NotReadyError, PollingLoop, StallDetector, type Clock, type PollingLoopReadiness } from '@tally/shared';
import type { AccountRepository } from '../accounts/account.repository';
import { EXPIRY_BACKLOG_COUNT_LIMIT, expiryBacklogSources, type ExpiryBacklogSource } from './expiry.metrics';
import type { DueExpiry, ExpirySchedule } from './expiry.schedule';

/** The actor on the events expiry decides (no API key asked for them). */
const EXPIRY_ACTOR = 'system:expiry';

/** How long the worker waits after a pass that claimed less than a full batch, or in which nothing succeeded. */
const POLL_MS = 500;
const BATCH = 200;
/** Accounts decided at once within a pass (the items of one account in turn). */
const CONCURRENCY = 8;
/** How long a claimed row is kept from other replicas (and from this one's next pass) while its item is decided. */
const LEASE_MS = 30_000;
/**
 * How long after it first came due an item the account does not know is still looked for, and how often: at most four
 * looks for the row of a command that was refused (an authorization answered 402 leaves one), enough for an append
 * that waited on a lock to commit.
 */
const UNKNOWN_GRACE_MS = 30_000;
const UNKNOWN_RECHECK_MS = 10_000;
/** After a failure the item is due again after 1 s, doubling with each failure in a row up to 30 s. */
const RETRY_MS = { first: 1_000, most: 30_000 };
/**
 * Readiness: not ready once the same item (or claiming, or removing) has failed 5 times in a row or for 30 s. A streak
 * with no failure for 2 minutes is over: the item may have gone to another replica, or been resolved there.
 */
const EXPIRY_STALL = { afterAttempts: 5, afterMs: 30_000, quietAfterMs: 120_000 };

/** What deciding one item came to: its row removed, moved (to the item's own time or to a look again), or it failed. */
type Outcome = { row: 'done'; resolved: number } | { row: 'moved' } | { row: 'failed' };

const keyOf = (item: DueExpiry): string => `${item.accountId}\u0000${item.kind}\u0000${item.itemId}`;

/**
 * Runs `work` over `items`, up to `concurrency` accounts at once and the items of one account in turn (in their
 * order): two items of one account decided at once would only race for its stream. `work` must not throw.
 */
async function inTurnPerAccount<T extends { accountId: string }>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  const byAccount = new Map<string, T[]>();
  for (const item of items) {
    const group = byAccount.get(item.accountId);
    if (group) group.push(item);
    else byAccount.set(item.accountId, [item]);
  }
  const queue = [...byAccount.values()];
  const runner = async (): Promise<void> => {
    for (let group = queue.shift(); group; group = queue.shift()) for (const item of group) await work(item);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, runner));
}

/**
 * Releases holds past their TTL and expires promotional grants past their expiry without waiting for other activity
 * on the account. It claims the due rows of the expiry schedule, BATCH at a time, under a lease that keeps other
 * replicas off them, and sends each account, CONCURRENCY accounts at once, through the same AccountRepository path as
 * the HTTP commands:
 * - a hold: `ReleaseHold {reason: 'expired'}` with the idempotency key `expire:<holdId>`;
 * - expiring credits: `ExpireCredits {bucketId}` with the key `expire-credits:<bucketId>`.
 * A pass that claimed a full batch and in which something succeeded is followed by the next at once; otherwise the
 * worker waits POLL_MS. Every hold has a row, also the ones settled long before their TTL, so this is what keeps up
 * with the rate holds are placed at.
 *
 * Exactly once without a leader: the decider releases a hold at most once and expires a bucket at most once, and
 * both commands are no-ops before the item is due, so the one decision that records events under a key is the one
 * that resolves that item; the append is version-checked, so a second instance, a redo after a crash or a stale row
 * decides nothing. The row is then removed (the pass's rows in one statement), moved to the item's own time if it is
 * still open and not yet due, or due again after a backoff when deciding failed. The schedule's backlog (rows due,
 * how long the oldest has waited) is a metric.
 */
export class ExpiryWorker {
  /** Set by stop(): a pass under way ends after the items it is deciding. */
  private stopped = false;
  /** Runs expireDue every pollMs after the previous pass ended, one pass at a time. */
  private readonly loop: PollingLoop;
  /** Consecutive failures per item (and of claiming, and of removing), for readiness and the log. */
  private readonly stalls = new StallDetector(EXPIRY_STALL);
  private readonly backlog: ExpiryBacklogSource = { backlog: () => this.deps.schedule.backlog(this.deps.clock.now(), EXPIRY_BACKLOG_COUNT_LIMIT) };

  constructor(
    private readonly deps: { schedule: ExpirySchedule; accounts: AccountRepository; clock: Clock; logger: Logger; pollMs?: number; readiness?: PollingLoopReadiness },
  ) {
    this.loop = new PollingLoop('expiry', deps.pollMs ?? POLL_MS, (progressed) => this.expireDue(progressed), deps.logger, deps.readiness ?? DEFAULT_LOOP_READINESS);
  }

  async start(): Promise<void> {
    this.stopped = false;
    expiryBacklogSources.add(this.backlog);
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    expiryBacklogSources.delete(this.backlog);
    await this.loop.stop();
  }

  /**
   * Readiness: throws while a pass makes no progress (PostgreSQL not answering: PollingLoop.check), or while expiring
   * keeps failing (which item, attempts, since, last error).
   */
  checkFlowing(): void {
    this.loop.check();
    const [stalled] = this.stalls.stalled();
    if (stalled) {
      throw new NotReadyError(`expiry failing: ${stalled.attempts} attempts since ${stalled.since} (${JSON.stringify(stalled.where)}): ${stalled.lastError}`, { ...stalled });
    }
  }

  /**
   * Resolves the items due now: passes of up to BATCH claimed rows until one claims less than a full batch, none of its
   * items succeeds, or the worker stops (`progressed` after each pass). Returns how many holds were released or grants
   * expired. Exposed for tests.
   */
  async expireDue(progressed: () => void = () => undefined): Promise<number> {
    let resolved = 0;
    for (;;) {
      const pass = await this.pass(progressed);
      progressed();
      resolved += pass.resolved;
      if (pass.claimed < BATCH || pass.failed === pass.claimed || this.stopped) return resolved;
    }
  }

  /** One claimed batch; `progressed` after each item decided (one account's items wait on each other). */
  private async pass(progressed: () => void): Promise<{ claimed: number; resolved: number; failed: number }> {
    let due: DueExpiry[];
    try {
      due = await this.deps.schedule.claim(this.deps.clock.now(), BATCH, LEASE_MS);
      this.stalls.succeeded('claim');
    } catch (error) {
      const streak = this.stalls.failed('claim', {}, error);
      this.deps.logger.warn({ err: error, attempts: streak.attempts }, 'claiming due expiries failed');
      return { claimed: 0, resolved: 0, failed: 0 };
    }
    const done: DueExpiry[] = [];
    const notDecided: DueExpiry[] = [];
    let resolved = 0;
    let failed = 0;
    await inTurnPerAccount(due, CONCURRENCY, async (item) => {
      if (this.stopped) return void notDecided.push(item);
      const outcome = await this.decide(item);
      if (outcome.row !== 'failed') progressed();
      if (outcome.row === 'done') {
        done.push(item);
        resolved += outcome.resolved;
      } else if (outcome.row === 'failed') {
        failed += 1;
      }
    });
    try {
      await this.deps.schedule.remove(done);
      this.stalls.succeeded('remove');
    } catch (error) {
      // Their leases end and a later pass decides them again: no-ops now, then removed.
      const streak = this.stalls.failed('remove', {}, error);
      this.deps.logger.warn({ err: error, attempts: streak.attempts, rows: done.length }, 'removing resolved expiries failed');
    }
    // Due again now for whoever runs next, rather than when their lease ends (best effort: it ends anyway).
    await this.deps.schedule.retryAt(notDecided, this.deps.clock.now()).catch(() => undefined);
    return { claimed: due.length, resolved, failed };
  }

  /** Decides one claimed item; never throws (a failure has its row due again after a backoff). */
  private async decide(item: DueExpiry): Promise<Outcome> {
    try {
      const outcome = item.kind === 'hold' ? await this.releaseHold(item) : await this.expireCredits(item);
      this.stalls.succeeded(keyOf(item));
      return outcome;
    } catch (error) {
      const where = { accountId: item.accountId, kind: item.kind, itemId: item.itemId };
      const streak = this.stalls.failed(keyOf(item), where, error);
      const backoffMs = Math.min(RETRY_MS.most, RETRY_MS.first * 2 ** (streak.attempts - 1));
      this.deps.logger.warn({ err: error, ...where, attempts: streak.attempts, retryInMs: backoffMs }, 'expiring failed; retrying');
      // Later, not at once: a row failing for good would otherwise be what every pass claims first.
      await this.deps.schedule.retryAt([item], new Date(this.deps.clock.now().getTime() + backoffMs)).catch(() => undefined);
      return { row: 'failed' };
    }
  }

  private async releaseHold(item: DueExpiry): Promise<Outcome> {
    const { accountId, itemId: holdId } = item;
    const decision = await this.deps.accounts.execute({ type: 'ReleaseHold', accountId, holdId, reason: 'expired' }, `expire:${holdId}`, EXPIRY_ACTOR);
    const open = decision.state.holds.get(holdId);
    if (open) {
      await this.deps.schedule.reschedule(item, open.expiresAt);
      return { row: 'moved' };
    }
    // Never placed, as far as the account knows: its append may still be on its way (see lookAgainIfUnknown). An
    // unlimited plan places no hold at all (nothing to reserve): its row is done at once.
    const unknown = remembered(decision.state, 'hold', holdId) === undefined && !decision.state.plan.unlimited;
    if (unknown && (await this.lookAgainIfUnknown(item))) return { row: 'moved' };
    const released = decision.events.filter((event) => event.type === 'HoldReleased').length;
    if (released > 0) this.deps.logger.info({ accountId, holdId, released }, 'expired holds released');
    return { row: 'done', resolved: released };
  }

  private async expireCredits(item: DueExpiry): Promise<Outcome> {
    const { accountId, itemId: bucketId } = item;
    // The instant the decision was made at: judged on a later reading of the clock, a grant whose expiry passed
    // meanwhile would look due although the decision expired nothing, and its row would be removed for good.
    let decidedAt = this.deps.clock.now();
    const at = (now: Date) => ((decidedAt = now), { type: 'ExpireCredits' as const, accountId, bucketId });
    const decision = await this.deps.accounts.execute({ accountId, at }, `expire-credits:${bucketId}`, EXPIRY_ACTOR);
    // Not due yet (the row was written by an attempt that named an earlier expiresAt): moved to the grant's own time,
    // also while its bucket is empty (held or spent): a hold released or a refund brings its credits back before then.
    const grant = decision.state.grants.get(bucketId);
    if (grant?.closed === undefined && grant?.expiresAt !== undefined && !isDue(grant.expiresAt, decidedAt)) {
      await this.deps.schedule.reschedule(item, grant.expiresAt);
      return { row: 'moved' };
    }
    if (!grant && (await this.lookAgainIfUnknown(item))) return { row: 'moved' };
    const expired = decision.events.filter((event) => event.type === 'CreditsExpired').length;
    if (expired > 0) this.deps.logger.info({ accountId, bucketId, expired }, 'expired credits removed');
    return { row: 'done', resolved: expired };
  }

  /**
   * A row is written before the append of the hold or grant it wakes up for, and the worker reads committed state: an
   * item the account does not know yet may be one whose append is still waiting (a stream row locked by a consumer's
   * transaction, a slow database) past its due time. Its row is looked at again UNKNOWN_RECHECK_MS later until
   * UNKNOWN_GRACE_MS after it first came due; only then is it taken for one never placed (a refused command's row) and
   * removed. An append that commits later still (it may wait as long as PG_QUERY_TIMEOUT_MS, and be retried) writes
   * the row again itself (ExpirySchedule.addAgainIfDue).
   */
  private async lookAgainIfUnknown(item: DueExpiry): Promise<boolean> {
    const now = this.deps.clock.now().getTime();
    if (now - item.dueAt.getTime() >= UNKNOWN_GRACE_MS) return false;
    await this.deps.schedule.retryAt([item], new Date(now + UNKNOWN_RECHECK_MS));
    return true;
  }
}

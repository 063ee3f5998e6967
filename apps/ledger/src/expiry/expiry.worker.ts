import type { Logger } from 'pino';
import { remembered } from '@tally/ledger-domain';
import { NotReadyError, StallDetector, type Clock } from '@tally/shared';
import type { AccountRepository } from '../accounts/account.repository';
import type { DueExpiry, ExpirySchedule } from './expiry.schedule';

/** The actor on the events expiry decides (no API key asked for them). */
const EXPIRY_ACTOR = 'system:expiry';

const POLL_MS = 500;
const BATCH = 200;
/**
 * How long after its due time an item the account does not know is still looked for, and how often: at most four looks
 * for the row of a command that was refused (an authorization answered 402 leaves one), enough for an append that
 * waited on a lock to commit.
 */
const UNKNOWN_GRACE_MS = 30_000;
const UNKNOWN_RECHECK_MS = 10_000;
/** Readiness: not ready once the same item (or the poll itself) has failed 5 times in a row or for 30 s. */
const EXPIRY_STALL = { afterAttempts: 5, afterMs: 30_000 };

/**
 * Releases holds past their TTL and expires promotional grants past their expiry without waiting for other activity
 * on the account. Every POLL_MS it reads the due rows of the expiry schedule and sends each account, through the
 * same AccountRepository path as the HTTP commands:
 * - a hold: `ReleaseHold {reason: 'expired'}` with the idempotency key `expire:<holdId>`;
 * - expiring credits: `ExpireCredits {bucketId}` with the key `expire-credits:<bucketId>`.
 *
 * Exactly once without a leader: the decider releases a hold at most once and expires a bucket at most once, and
 * both commands are no-ops before the item is due, so the one decision that records events under a key is the one
 * that resolves that item; the append is version-checked, so a second instance, a redo after a crash or a stale row
 * decides nothing. The row is then removed, or moved to the item's own time if it is still open and not yet due.
 */
export class ExpiryWorker {
  private stopped = true;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  /** Consecutive failures per item (and of the poll), for readiness and the log. */
  private readonly stalls = new StallDetector(EXPIRY_STALL);

  constructor(private readonly deps: { schedule: ExpirySchedule; accounts: AccountRepository; clock: Clock; logger: Logger }) {}

  async start(): Promise<void> {
    this.stopped = false;
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Readiness: throws while expiring keeps failing (which item, attempts, since, last error). */
  checkFlowing(): void {
    const [stalled] = this.stalls.stalled();
    if (stalled) {
      throw new NotReadyError(`expiry failing: ${stalled.attempts} attempts since ${stalled.since} (${JSON.stringify(stalled.where)}): ${stalled.lastError}`, { ...stalled });
    }
  }

  /** One pass over the items due now; returns how many were released or expired. Exposed for tests. */
  async expireDue(): Promise<number> {
    let due: DueExpiry[];
    try {
      due = await this.deps.schedule.due(this.deps.clock.now(), BATCH);
      this.stalls.succeeded('poll');
    } catch (error) {
      const streak = this.stalls.failed('poll', {}, error);
      this.deps.logger.warn({ err: error, attempts: streak.attempts }, 'reading due expiries failed');
      return 0;
    }
    // Streaks of items no longer due here (resolved meanwhile, e.g. by another instance) are over.
    const keyOf = (item: DueExpiry) => `${item.accountId}\u0000${item.kind}\u0000${item.itemId}`;
    const keys = new Set(due.map(keyOf));
    this.stalls.retain((key) => key === 'poll' || keys.has(key));
    let resolved = 0;
    for (const item of due) {
      if (this.stopped) break;
      const key = keyOf(item);
      try {
        resolved += item.kind === 'hold' ? await this.releaseHold(item) : await this.expireCredits(item);
        this.stalls.succeeded(key);
      } catch (error) {
        const where = { accountId: item.accountId, kind: item.kind, itemId: item.itemId };
        const streak = this.stalls.failed(key, where, error);
        this.deps.logger.warn({ err: error, ...where, attempts: streak.attempts }, 'expiring failed; retrying');
      }
    }
    return resolved;
  }

  private async releaseHold(item: DueExpiry): Promise<number> {
    const { accountId, itemId: holdId } = item;
    const decision = await this.deps.accounts.execute({ type: 'ReleaseHold', accountId, holdId, reason: 'expired' }, `expire:${holdId}`, EXPIRY_ACTOR);
    const open = decision.state.holds.get(holdId);
    if (open) {
      await this.deps.schedule.reschedule(item, open.expiresAt);
      return 0;
    }
    // Never placed, as far as the account knows: its append may still be on its way (see lookAgainIfUnknown). An
    // unlimited plan places no hold at all (nothing to reserve): its row is done at once.
    const unknown = remembered(decision.state, 'hold', holdId) === undefined && !decision.state.plan.unlimited;
    if (unknown && (await this.lookAgainIfUnknown(item))) return 0;
    await this.deps.schedule.remove(item);
    const released = decision.events.filter((event) => event.type === 'HoldReleased').length;
    if (released > 0) this.deps.logger.info({ accountId, holdId, released }, 'expired holds released');
    return released;
  }

  private async expireCredits(item: DueExpiry): Promise<number> {
    const { accountId, itemId: bucketId } = item;
    const decision = await this.deps.accounts.execute({ type: 'ExpireCredits', accountId, bucketId }, `expire-credits:${bucketId}`, EXPIRY_ACTOR);
    // Not due yet (the row was written by an attempt that named an earlier expiresAt): moved to the grant's own time,
    // also while its bucket is empty (held or spent): a hold released or a refund brings its credits back before then.
    const grant = decision.state.grants.get(bucketId);
    if (grant?.closed === undefined && grant?.expiresAt !== undefined && Date.parse(grant.expiresAt) > this.deps.clock.now().getTime()) {
      await this.deps.schedule.reschedule(item, grant.expiresAt);
      return 0;
    }
    if (!grant && (await this.lookAgainIfUnknown(item))) return 0;
    await this.deps.schedule.remove(item);
    const expired = decision.events.filter((event) => event.type === 'CreditsExpired').length;
    if (expired > 0) this.deps.logger.info({ accountId, bucketId, expired }, 'expired credits removed');
    return expired;
  }

  /**
   * A row is written before the append of the hold or grant it wakes up for, and the worker reads committed state: an
   * item the account does not know yet may be one whose append is still waiting (a stream row locked by a consumer's
   * transaction, a slow database) past its due time. Its row is looked at again UNKNOWN_RECHECK_MS later until
   * UNKNOWN_GRACE_MS after it was due; only then is it taken for one never placed (a refused command's row) and removed.
   */
  private async lookAgainIfUnknown(item: DueExpiry): Promise<boolean> {
    const now = this.deps.clock.now().getTime();
    if (now - item.dueAt.getTime() >= UNKNOWN_GRACE_MS) return false;
    await this.deps.schedule.reschedule(item, new Date(now + UNKNOWN_RECHECK_MS).toISOString());
    return true;
  }

  private tick(): void {
    if (this.stopped) return;
    this.running = this.expireDue()
      .then(() => undefined)
      .finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(() => this.tick(), POLL_MS);
      });
  }
}

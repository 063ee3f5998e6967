import type { Logger } from 'pino';
import type { Clock } from '@tally/shared';
import type { AccountRepository } from '../accounts/account.repository';
import type { DueHold, HoldExpirySchedule } from './hold-expiry.schedule';

const POLL_MS = 500;
const BATCH = 200;
/** Readiness: not ready once the same hold (or the poll itself) has failed 5 times in a row or for 30 s. */
const STALL_AFTER_ATTEMPTS = 5;
const STALL_AFTER_MS = 30_000;

interface Streak {
  where: Record<string, unknown>;
  since: number;
  attempts: number;
  lastError: string;
}

/**
 * Releases holds past their TTL without waiting for other activity on the account. Every POLL_MS it reads the
 * due rows of the hold-expiry schedule and sends each account `ReleaseHold {reason: 'expired'}` through the same
 * AccountRepository path as `DELETE /holds/:holdId`, with the idempotency key `expire:<holdId>`.
 *
 * Exactly once without a leader: the decider releases a hold at most once and refuses to expire it before it is
 * due, and the append is version-checked, so a second instance, a redo after a crash or a stale row decides
 * nothing. The row is then removed, or moved to the hold's own expiry if it is still open.
 */
export class HoldExpiryWorker {
  private stopped = true;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  /** Consecutive failures per hold (and of the poll), for readiness and the log. */
  private readonly streaks = new Map<string, Streak>();

  constructor(private readonly deps: { schedule: HoldExpirySchedule; accounts: AccountRepository; clock: Clock; logger: Logger }) {}

  async start(): Promise<void> {
    this.stopped = false;
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Readiness: throws while expiring keeps failing (which hold, attempts, since, last error). */
  checkFlowing(): void {
    const now = Date.now();
    for (const streak of this.streaks.values()) {
      if (streak.attempts >= STALL_AFTER_ATTEMPTS || now - streak.since >= STALL_AFTER_MS) {
        throw new Error(`hold expiry failing: ${streak.attempts} attempts since ${new Date(streak.since).toISOString()} (${JSON.stringify(streak.where)}): ${streak.lastError}`);
      }
    }
  }

  /** One pass over the holds due now; returns how many were released. Exposed for tests. */
  async expireDue(): Promise<number> {
    let due: DueHold[];
    try {
      due = await this.deps.schedule.due(this.deps.clock.now(), BATCH);
      this.streaks.delete('poll');
    } catch (error) {
      const streak = this.failed('poll', {}, error);
      this.deps.logger.warn({ err: error, attempts: streak.attempts }, 'reading due holds failed');
      return 0;
    }
    // Streaks of holds no longer due here (released meanwhile, e.g. by another instance) are over.
    const keys = new Set(due.map((hold) => `${hold.accountId}\u0000${hold.holdId}`));
    for (const key of [...this.streaks.keys()]) if (key !== 'poll' && !keys.has(key)) this.streaks.delete(key);
    let released = 0;
    for (const hold of due) {
      if (this.stopped) break;
      const key = `${hold.accountId}\u0000${hold.holdId}`;
      try {
        released += await this.expire(hold);
        this.streaks.delete(key);
      } catch (error) {
        const streak = this.failed(key, { accountId: hold.accountId, holdId: hold.holdId }, error);
        this.deps.logger.warn({ err: error, accountId: hold.accountId, holdId: hold.holdId, attempts: streak.attempts }, 'expiring a hold failed; retrying');
      }
    }
    return released;
  }

  private async expire({ accountId, holdId }: DueHold): Promise<number> {
    const decision = await this.deps.accounts.execute({ type: 'ReleaseHold', accountId, holdId, reason: 'expired' }, `expire:${holdId}`);
    const open = decision.state.holds.get(holdId);
    if (open) {
      await this.deps.schedule.reschedule(accountId, holdId, open.expiresAt);
      return 0;
    }
    await this.deps.schedule.remove(accountId, holdId);
    const released = decision.events.filter((event) => event.type === 'HoldReleased').length;
    if (released > 0) this.deps.logger.info({ accountId, holdId, released }, 'expired holds released');
    return released;
  }

  private failed(key: string, where: Record<string, unknown>, error: unknown): Streak {
    const previous = this.streaks.get(key);
    const streak = {
      where,
      since: previous?.since ?? Date.now(),
      attempts: (previous?.attempts ?? 0) + 1,
      lastError: error instanceof Error ? error.message : String(error),
    };
    this.streaks.set(key, streak);
    return streak;
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

import { Inject, Injectable } from '@nestjs/common';
import { balanceView, cannotCover, idempotencyKey, InsufficientCreditsError, isAccountError, openHold, type AccountState } from '@tally/ledger-domain';
import { formatCredits, parseCredits, type Micro } from '@tally/money';
import { priceUsage, type RateCard } from '@tally/pricing';
import { CLOCK, type Clock } from '@tally/shared';
import { AccountRepository, type Decision } from '../accounts/account.repository';
import { LedgerConfig } from '../config/ledger.config';
import { RATE_CARD } from '../database/tokens.provider';
import { ExpirySchedule } from '../expiry/expiry.schedule';
import { LedgerError, toLedgerError } from '../ledger.errors';
import type { AuthorizationRequest } from './authorization.request.dto';

const HINT = 'Buy a credit pack or upgrade your plan to continue.';

type PricedRequest = NonNullable<AuthorizationRequest['usage']>;

const isConflict = (error: unknown): boolean => error instanceof LedgerError && error.code === 'IDEMPOTENCY_CONFLICT';

/**
 * May this account spend N (or this estimated usage, priced by the current rate card)? Answers from the ledger's
 * own state (the event stream, via the version-checked cache), never from a read model that may lag; with a hold,
 * places it (PlaceHold) after scheduling its expiry.
 */
@Injectable()
export class AuthorizeHandler {
  constructor(
    private readonly accounts: AccountRepository,
    private readonly expiries: ExpirySchedule,
    private readonly config: LedgerConfig,
    @Inject(RATE_CARD) private readonly rateCard: RateCard,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /** `actor`: the API key's name, recorded on a hold's event (the audit trail). */
  async authorize(accountId: string, body: AuthorizationRequest, actor?: string) {
    const now = this.clock.now();
    const required = this.required(body, now);
    if (body.hold) {
      const { holdId, ttlSeconds = this.config.HOLD_DEFAULT_TTL_SECONDS } = body.hold;
      // A usage estimate that prices to 0 (no tokens, a model priced 0) reserves nothing: allowed, with no hold kept,
      // as on an unlimited plan (an amount given is positive: the request's validation says so).
      if (required === 0n) return this.nothingToHold(accountId, holdId, new Date(now.getTime() + ttlSeconds * 1000).toISOString(), now);
      try {
        return await this.placeHold(accountId, required, holdId, ttlSeconds, now, actor);
      } catch (error) {
        // Only a hold priced from its usage: with an amount, the amount is what is held (a repeat prices nothing).
        const usage = body.amount === undefined ? body.usage : undefined;
        if (!isConflict(error) || !usage) throw error;
        const repeat = await this.repricedRepeat(accountId, holdId, usage, required, ttlSeconds, now, actor);
        if (repeat) return repeat;
        throw error;
      }
    }
    const account = await this.accounts.load(accountId);
    if (account.version === 0) throw accountNotFound(accountId);
    const view = balanceView(account.state, now);
    if (!view.unlimited && view.available < required) throw refusal(cannotCover(account.state, required, view.available, now));
    return { allowed: true, required: formatCredits(required), available: formatCredits(view.available), unlimited: view.unlimited };
  }

  /** A hold of nothing: the answer names the hold asked for, and nothing is placed or remembered (404: no account). */
  private async nothingToHold(accountId: string, holdId: string, expiresAt: string, now: Date) {
    const { state, version } = await this.accounts.load(accountId);
    if (version === 0) throw accountNotFound(accountId);
    return { ...heldAnswer(state, holdId, 0n, expiresAt, now), ...(state.plan.unlimited && { unlimited: true }) };
  }

  /** HOLD_SETTLE_GRACE_SECONDS in milliseconds: how much later than the `expiresAt` answered a hold's credits are released. */
  private get settleGraceMs(): number {
    return this.config.HOLD_SETTLE_GRACE_SECONDS * 1000;
  }

  /**
   * The TTL runs from when the hold is placed: the repository builds the command at its decision's instant (each
   * attempt's), so a decision that comes later than the TTL after the request (a lost race for the account, a slow
   * database) still places the hold instead of refusing it as already due (INVALID_COMMAND). The expiry is scheduled
   * first with the request's instant, earlier or equal: the worker reschedules it to the hold's own expiry.
   * The hold's `expiresAt` (its event's, the decider's, the expiry worker's) is when its credits are released: the TTL
   * plus HOLD_SETTLE_GRACE_SECONDS. The answer's `expiresAt` is the TTL's end (heldAnswer), and so is what counts as an
   * open hold for a repeat (openForRepeat): past it, a repeat is HOLD_CLOSED, as without the grace.
   */
  private async placeHold(accountId: string, required: Micro, holdId: string, ttlSeconds: number, now: Date, actor?: string) {
    const expiresAt = (at: Date) => new Date(at.getTime() + ttlSeconds * 1000 + this.settleGraceMs).toISOString();
    let decision: Decision;
    try {
      // Before the append, so no hold is ever recorded without its expiry being scheduled (see ExpiryWorker).
      await this.expiries.add(accountId, 'hold', holdId, expiresAt(now));
      decision = await this.accounts.execute(
        { accountId, at: (decidedAt) => ({ type: 'PlaceHold', accountId, holdId, amount: required, expiresAt: expiresAt(decidedAt) }) },
        idempotencyKey('hold', holdId), // a snapshotted account looks a forgotten key up by it (account-memory.model.ts)
        actor,
      );
    } catch (error) {
      // The append may have committed before the failure (a connection lost after COMMIT): as after a placement, a
      // hold due by now gets its row again (no statement otherwise: a refusal is decided well within its TTL).
      await this.expiries.addAgainIfDue(accountId, 'hold', holdId, expiresAt(now), this.clock.now()).catch(() => undefined);
      // An account with no history holds nothing (a hold is refused there, never placed): the same 404 as an
      // authorization without a hold, looked up only on this refusal's path.
      if (isAccountError(error, 'INSUFFICIENT_CREDITS') && (await this.accounts.load(accountId)).version === 0) throw accountNotFound(accountId);
      throw refusal(error);
    }
    const { state, events } = decision;
    // Placed by this decision (events), it is answered even if a TTL shorter than the decision took is over by now.
    const hold = events.length > 0 ? state.holds.get(holdId) : this.openForRepeat(state, holdId, now);
    if (events.length > 0) await this.expiries.addAgainIfDue(accountId, 'hold', holdId, expiresAt(now), this.clock.now());
    if (hold) return heldAnswer(state, holdId, hold.amount, this.settleBy(hold.expiresAt), now);
    // An unlimited plan reserves nothing and remembers no hold: the answer names the hold asked for.
    if (state.plan.unlimited) return { ...heldAnswer(state, holdId, required, this.settleBy(expiresAt(now)), now), unlimited: true };
    // A repeat of a hold settled, released or expired since: it reserves nothing any more, so it is no "allowed".
    throw holdClosed(holdId);
  }

  /**
   * A hold priced from a usage, retried after the rate card's next version took effect, is priced anew and refused as
   * other content (IDEMPOTENCY_CONFLICT) although it is the same request. Undefined when it is not a repeat.
   * - The hold is open: it is the answer when the usage, priced when the hold was placed (its expiry less the TTL
   *   asked), gives its amount.
   * - The hold was settled, released or is due: only its amount is remembered. The usage is priced by each other
   *   version in effect during the TTL before now (a request older than that would have found its hold expired), the
   *   latest first; one that gives a repeat is answered as any retry of a closed hold is (HOLD_CLOSED), and nothing
   *   is reserved (the hold's key is taken, so the command can only repeat or conflict).
   */
  private async repricedRepeat(accountId: string, holdId: string, usage: PricedRequest, priced: Micro, ttlSeconds: number, now: Date, actor?: string) {
    const { state } = await this.accounts.load(accountId);
    const open = this.openForRepeat(state, holdId, now);
    if (open) {
      const placedAt = new Date(Date.parse(open.expiresAt) - ttlSeconds * 1000 - this.settleGraceMs);
      return this.priceAt(usage, placedAt) === open.amount ? heldAnswer(state, holdId, open.amount, this.settleBy(open.expiresAt), now) : undefined;
    }
    const tried = new Set<Micro>([priced]);
    for (const at of this.versionsSince(new Date(now.getTime() - ttlSeconds * 1000), now)) {
      const amount = this.priceAt(usage, at);
      if (amount === undefined || tried.has(amount)) continue;
      tried.add(amount);
      try {
        return await this.placeHold(accountId, amount, holdId, ttlSeconds, now, actor);
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
    return undefined;
  }

  /** The end of a hold's TTL, as answered, from the instant its credits are released (its event's `expiresAt`). */
  private settleBy(releasedAt: string): string {
    return new Date(Date.parse(releasedAt) - this.settleGraceMs).toISOString();
  }

  /** The hold under this id if its TTL has not ended (its credits may stay reserved for the settle grace after). */
  private openForRepeat(state: AccountState, holdId: string, now: Date) {
    return openHold(state, holdId, new Date(now.getTime() + this.settleGraceMs));
  }

  /** An instant in each rate card version in effect at some time in [from, to], the latest version first. */
  private versionsSince(from: Date, to: Date): Date[] {
    const { versions } = this.rateCard;
    return versions
      .filter((version, index) => version.effectiveFrom <= to && (index + 1 === versions.length || versions[index + 1].effectiveFrom > from))
      .map((version) => (version.effectiveFrom > from ? version.effectiveFrom : from))
      .reverse();
  }

  /** The usage's price by the version in effect at `at`; undefined where that version could not price it. */
  private priceAt(usage: PricedRequest, at: Date): Micro | undefined {
    try {
      return priceUsage(this.rateCard, usage, at).amount;
    } catch {
      return undefined;
    }
  }

  private required(body: AuthorizationRequest, now: Date): Micro {
    if (body.amount !== undefined) return parseCredits(body.amount);
    try {
      return priceUsage(this.rateCard, body.usage as NonNullable<AuthorizationRequest['usage']>, now).amount;
    } catch (error) {
      throw toLedgerError(error, 'usage.');
    }
  }
}

function heldAnswer(state: AccountState, holdId: string, amount: Micro, expiresAt: string, now: Date) {
  const required = formatCredits(amount);
  return { allowed: true, required, available: formatCredits(balanceView(state, now).available), hold: { holdId, amount: required, expiresAt } };
}

function holdClosed(holdId: string): LedgerError {
  return new LedgerError('HOLD_CLOSED', `Hold ${holdId} was placed and is closed since (settled, released or expired): it reserves nothing. Place a new hold under a new id.`, { holdId });
}

function accountNotFound(accountId: string): LedgerError {
  return new LedgerError('ACCOUNT_NOT_FOUND', `No account ${accountId}.`, { accountId });
}

/** A domain error as the ledger answers it: "Insufficient Credits" with what was required and a hint, any other by its code. */
function refusal(error: unknown): unknown {
  if (!(error instanceof InsufficientCreditsError)) return toLedgerError(error);
  return new LedgerError('INSUFFICIENT_CREDITS', 'Insufficient Credits', undefined, {
    required: formatCredits(error.required),
    available: formatCredits(error.available < 0n ? 0n : error.available),
    hint: HINT,
  });
}

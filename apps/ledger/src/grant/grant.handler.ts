import { Inject, Injectable } from '@nestjs/common';
import { truncateText } from '@tally/contracts';
import { balanceView, type GrantCredits } from '@tally/ledger-domain';
import { formatCredits, parseCredits } from '@tally/money';
import { CLOCK, type Clock } from '@tally/shared';
import { balanceFromView } from '../accounts/account-balance.view';
import { AccountRepository } from '../accounts/account.repository';
import { ExpirySchedule } from '../expiry/expiry.schedule';
import { toLedgerError } from '../ledger.errors';
import type { GrantRequest } from './grant.request.dto';

/**
 * GrantCredits: promotional grants (optional expiry; idempotent by key) here, and purchases (purchase/, which
 * sends the same command). A repeat with the same content is a duplicate answered with the first result's grant;
 * the same key with different content is refused (IDEMPOTENCY_CONFLICT).
 */
@Injectable()
export class GrantHandler {
  constructor(
    private readonly accounts: AccountRepository,
    private readonly expiries: ExpirySchedule,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  grant(accountId: string, body: GrantRequest, actor?: string) {
    return this.credit({
      type: 'GrantCredits',
      accountId,
      grantId: `grant:${body.idempotencyKey}`,
      kind: 'promotional',
      amount: parseCredits(body.amount),
      // The source keeps its earlier shape (the credits page labels a grant by it; at most 200 characters on the
      // wire); the whole reason travels as `reason`.
      source: `promo:${truncateText(body.reason, 194)}`,
      reason: body.reason,
      ...(body.expiresAt ? { expiresAt: new Date(body.expiresAt).toISOString() } : {}),
    }, actor);
  }

  /** `actor`: the API key's name, recorded on the event (the audit trail). */
  async credit(command: GrantCredits, actor?: string) {
    // Before the append, so no expiring grant is ever recorded without its expiry being scheduled (see ExpiryWorker).
    if (command.expiresAt !== undefined) await this.expiries.add(command.accountId, 'credits', command.grantId, command.expiresAt);
    const decision = await this.accounts.execute(command, command.grantId, actor).catch(async (error: unknown) => {
      // The append may have committed before the failure (a connection lost after COMMIT): an expiry due by now gets
      // its row again, as after an append (no statement otherwise).
      if (command.expiresAt !== undefined) await this.expiries.addAgainIfDue(command.accountId, 'credits', command.grantId, command.expiresAt, this.clock.now()).catch(() => undefined);
      throw toLedgerError(error);
    });
    if (command.expiresAt !== undefined && decision.events.length > 0) {
      await this.expiries.addAgainIfDue(command.accountId, 'credits', command.grantId, command.expiresAt, this.clock.now());
    }
    return {
      accountId: command.accountId,
      grantId: command.grantId,
      kind: command.kind,
      amount: formatCredits(command.amount),
      duplicate: decision.events.length === 0,
      balance: balanceFromView(command.accountId, balanceView(decision.state, this.clock.now()), decision.version),
    };
  }
}

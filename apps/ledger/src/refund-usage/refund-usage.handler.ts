import { Inject, Injectable } from '@nestjs/common';
import { balanceView, isAccountError, type BucketShare, type RefundUsage, type UsageRefunded } from '@tally/ledger-domain';
import { formatCredits, parseCredits } from '@tally/money';
import { CLOCK, type Clock } from '@tally/shared';
import { balanceFromView } from '../accounts/account-balance.view';
import { AccountRepository } from '../accounts/account.repository';
import { LedgerError, toLedgerError } from '../ledger.errors';
import type { RefundUsageRequest } from './refund-usage.request.dto';
import type { UsageRefundedResponseDto } from './refund-usage.response.dto';

const shareOut = (s: BucketShare) => ({ bucketId: s.bucketId, kind: s.kind, amount: formatCredits(s.amount) });

/**
 * RefundUsage: gives back part or all of a usage debit (README "Corrections"). Idempotent by key: a repeat with the
 * same content answers the first refund (duplicate true); other content under the key is IDEMPOTENCY_CONFLICT.
 */
@Injectable()
export class RefundUsageHandler {
  constructor(
    private readonly accounts: AccountRepository,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /** `actor`: the API key's name, recorded on the event (the audit trail). */
  async refund(accountId: string, usageId: string, body: RefundUsageRequest, actor?: string): Promise<UsageRefundedResponseDto> {
    const command: RefundUsage = {
      type: 'RefundUsage',
      accountId,
      refundId: `refund:${body.idempotencyKey}`,
      usageId,
      ...(body.amount !== undefined && { amount: parseCredits(body.amount) }),
      reason: body.reason,
      restoreExpired: body.restoreExpired ?? false,
    };
    const decision = await this.accounts.execute(command, command.refundId, actor).catch((error) => {
      // The domain counts in micro-credits; the wire in decimal credits.
      if (isAccountError(error, 'REFUND_EXCEEDS_DEBIT') && error.details) {
        const { requested, refundable, debited } = error.details as Record<string, bigint>;
        throw new LedgerError('REFUND_EXCEEDS_DEBIT', error.message, {
          field: 'amount', usageId, requested: formatCredits(requested), refundable: formatCredits(refundable), debited: formatCredits(debited),
        });
      }
      throw toLedgerError(error);
    });
    const decided = decision.events.find((e): e is UsageRefunded => e.type === 'UsageRefunded');
    const data = decided?.data ?? (decision.state.corrections.get(command.refundId) as UsageRefunded['data']);
    const debit = decision.state.debits.get(usageId);
    return {
      accountId,
      usageId,
      refundId: data.refundId,
      amount: formatCredits(data.amount),
      restored: data.restored.map(shareOut),
      forfeited: data.forfeited.map(shareOut),
      reissued: data.reissued ? { bucketId: data.reissued.bucketId, amount: formatCredits(data.reissued.amount) } : null,
      overdraftReduced: formatCredits(data.overdraftReduced),
      uncharged: formatCredits(data.uncharged),
      refundable: formatCredits(debit ? debit.amount - debit.refunded : 0n),
      restoreExpired: data.restoreExpired,
      reason: data.reason,
      refundedAt: data.refundedAt,
      duplicate: decided === undefined,
      balance: balanceFromView(accountId, balanceView(decision.state, this.clock.now()), decision.version),
    };
  }
}

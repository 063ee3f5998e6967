import { Inject, Injectable } from '@nestjs/common';
import { balanceView, type GrantVoided, type VoidGrant } from '@tally/ledger-domain';
import { formatCredits } from '@tally/money';
import { CLOCK, type Clock } from '@tally/shared';
import { balanceFromView } from '../accounts/account-balance.view';
import { AccountRepository } from '../accounts/account.repository';
import { toLedgerError } from '../ledger.errors';
import type { VoidGrantRequest } from './void-grant.request.dto';
import type { GrantVoidedResponseDto } from './void-grant.response.dto';

/**
 * VoidGrant: removes what is left of a grant or a purchase (README "Corrections"). Idempotent by key: a repeat with
 * the same content answers the first void (duplicate true); other content under the key is IDEMPOTENCY_CONFLICT.
 */
@Injectable()
export class VoidGrantHandler {
  constructor(
    private readonly accounts: AccountRepository,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /** `grantId` as the grant or purchase answered it (`grant:<key>`, `purchase:<paymentReference>`); `actor` for the audit trail. */
  async void(accountId: string, grantId: string, body: VoidGrantRequest, actor?: string): Promise<GrantVoidedResponseDto> {
    const command: VoidGrant = { type: 'VoidGrant', accountId, voidId: `void:${body.idempotencyKey}`, grantId, reason: body.reason };
    const decision = await this.accounts.execute(command, command.voidId, actor).catch((error) => {
      throw toLedgerError(error);
    });
    const decided = decision.events.find((e): e is GrantVoided => e.type === 'GrantVoided');
    const data = decided?.data ?? (decision.state.corrections.get(command.voidId) as GrantVoided['data']);
    return {
      accountId,
      grantId: data.grantId,
      voidId: data.voidId,
      kind: data.kind,
      amount: formatCredits(data.amount),
      reason: data.reason,
      voidedAt: data.voidedAt,
      duplicate: decided === undefined,
      balance: balanceFromView(accountId, balanceView(decision.state, this.clock.now()), decision.version),
    };
  }
}

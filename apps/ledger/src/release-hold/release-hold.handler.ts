import { Inject, Injectable } from '@nestjs/common';
import { balanceView, type HoldReleased } from '@tally/ledger-domain';
import { formatCredits } from '@tally/money';
import { CLOCK, type Clock } from '@tally/shared';
import { AccountRepository } from '../accounts/account.repository';
import { toLedgerError } from '../ledger.errors';

/** ReleaseHold before the hold expires; a hold resolves at most once (a repeat releases nothing). */
@Injectable()
export class ReleaseHoldHandler {
  constructor(
    private readonly accounts: AccountRepository,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /** `actor`: the API key's name, recorded on the event (the audit trail). */
  async release(accountId: string, holdId: string, actor?: string) {
    const decision = await this.accounts
      .execute({ type: 'ReleaseHold', accountId, holdId, reason: 'released' }, `release:${holdId}`, actor)
      .catch((error) => {
        throw toLedgerError(error);
      });
    // The decision may first release other holds that are due (every command does): answer this hold's release.
    const released = decision.events.find((e): e is HoldReleased => e.type === 'HoldReleased' && e.data.holdId === holdId);
    return {
      holdId,
      released: released ? formatCredits(released.data.amount) : '0',
      available: formatCredits(balanceView(decision.state, this.clock.now()).available),
    };
  }
}

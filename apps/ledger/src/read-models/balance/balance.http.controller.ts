import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ContractViolation } from '@tally/contracts';
import { balanceView } from '@tally/ledger-domain';
import { RequireScope } from '@tally/shared';
import { balanceFromView, balanceResponse, type BalanceResponse } from '../../accounts/account-balance.view';
import { AccountIdParam } from '../../accounts/account-id.decorator';
import { AccountRepository } from '../../accounts/account.repository';
import { LedgerError } from '../../ledger.errors';
import { BalanceReadRepository } from './balance.repository';

@ApiTags('accounts')
@ApiBearerAuth()
@Controller('v1/accounts/:accountId/balance')
export class BalanceHttpController {
  constructor(
    private readonly balances: BalanceReadRepository,
    private readonly accounts: AccountRepository,
  ) {}

  @Get()
  @RequireScope('accounts:read')
  @ApiOperation({ summary: 'Live balance from the read model, or `?at=` an instant: folded from the event stream' })
  @ApiQuery({ name: 'at', required: false, description: 'ISO-8601 instant' })
  async balance(@AccountIdParam() accountId: string, @Query('at') at?: string): Promise<BalanceResponse> {
    return at === undefined ? this.current(accountId) : this.asOf(accountId, at);
  }

  private async current(accountId: string): Promise<BalanceResponse> {
    const { streamVersion, cycleStart: _cycleStart, updatedAt: _updatedAt, accountId: _id, ...snapshot } = await this.balances.require(accountId);
    return balanceResponse(accountId, snapshot, streamVersion);
  }

  private async asOf(accountId: string, at: string): Promise<BalanceResponse> {
    const instant = new Date(at);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(at) || Number.isNaN(instant.getTime())) {
      throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'at', reason: 'must be an ISO-8601 instant' }]);
    }
    const account = await this.accounts.loadAsOf(accountId, instant);
    if (account.version === 0) throw new LedgerError('ACCOUNT_NOT_FOUND', `No account ${accountId} at ${at}.`, { accountId, at });
    return balanceFromView(accountId, balanceView(account.state, instant), account.version, instant.toISOString());
  }
}

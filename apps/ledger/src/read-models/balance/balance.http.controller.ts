import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiQuery } from '@nestjs/swagger';
import { ContractViolation } from '@tally/contracts';
import { INSTANT_RULE, parseInstant } from '@tally/instant';
import { balanceView } from '@tally/ledger-domain';
import { ApiErrors, ApiIdParam, AuthError, PortalGrantOf, PortalReadable, RequireScope, type PortalGrant } from '@tally/shared';
import { balanceFromView, balanceResponse, type BalanceResponse } from '../../accounts/account-balance.view';
import { AccountIdParam } from '../../accounts/account-id.decorator';
import { AccountRepository } from '../../accounts/account.repository';
import { BalanceResponseDto } from '../../accounts/balance.response.dto';
import { LedgerError } from '../../ledger.errors';
import { BalanceReadRepository } from './balance.repository';

@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId/balance')
export class BalanceHttpController {
  constructor(
    private readonly balances: BalanceReadRepository,
    private readonly accounts: AccountRepository,
  ) {}

  @Get()
  @RequireScope('accounts:read')
  @PortalReadable()
  @ApiOperation({ operationId: 'getBalance', summary: 'Live balance from the read model, or `?at=` an instant: folded from the event stream' })
  @ApiQuery({ name: 'at', required: false, description: 'ISO-8601 instant (service API keys only: a portal token gets 403)', schema: { type: 'string', format: 'date-time' } })
  @ApiOkResponse({ type: BalanceResponseDto })
  @ApiErrors({ 404: ['ACCOUNT_NOT_FOUND'] })
  async balance(@AccountIdParam() accountId: string, @PortalGrantOf() portal: PortalGrant | undefined, @Query('at') at?: string): Promise<BalanceResponse> {
    if (at === undefined) return this.current(accountId);
    // A fold of the whole event stream is an operator's tool, not something an end user's browser may ask for at will.
    if (portal) throw new AuthError('FORBIDDEN', 'A portal token reads the live balance; ?at= needs a service API key.', { reason: 'PORTAL_TOKEN_NOT_ALLOWED' });
    return this.asOf(accountId, at);
  }

  private async current(accountId: string): Promise<BalanceResponse> {
    const { streamVersion, cycleStart: _cycleStart, updatedAt: _updatedAt, accountId: _id, ...snapshot } = await this.balances.require(accountId);
    return balanceResponse(accountId, snapshot, streamVersion);
  }

  private async asOf(accountId: string, at: string): Promise<BalanceResponse> {
    const instant = parseInstant(at);
    if (!instant) throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'at', reason: INSTANT_RULE }]);
    const account = await this.accounts.loadAsOf(accountId, instant);
    if (account.version === 0) throw new LedgerError('ACCOUNT_NOT_FOUND', `No account ${accountId} at ${at}.`, { accountId, at });
    return balanceFromView(accountId, balanceView(account.state, instant), account.version, instant.toISOString());
  }
}

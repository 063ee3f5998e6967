import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Pool } from 'pg';
import { ContractViolation } from '@tally/contracts';
import { balanceView } from '@tally/ledger-domain';
import { formatCredits } from '@tally/money';
import { RequireScope } from '@tally/shared';
import { LedgerConfig } from '../../config/ledger.config';
import { PG_POOL } from '../../database/database.tokens';
import { LedgerError } from '../../ledger.errors';
import { AccountRepository } from '../account.repository';
import { AccountIdParam } from '../account-id.param';
import { balanceFromView, balanceResponse, type BalanceResponse } from './balance.response';

interface BalanceRow {
  stream_version: string;
  available: string; allowance: string; promotional: string; purchased: string; held: string; overdraft: string;
  allocation: string; used_this_cycle: string; cycle_id: string | null; cycle_end: Date | null; plan_id: string | null; unlimited: boolean;
}

@ApiTags('accounts')
@ApiBearerAuth()
@Controller('v1/accounts/:accountId/balance')
export class BalanceHttpController {
  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    private readonly config: LedgerConfig,
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
    const { rows } = await this.pool.query<BalanceRow>(`select * from "${this.config.DATABASE_SCHEMA}".balances where account_id = $1`, [accountId]);
    const row = rows[0];
    if (!row) throw new LedgerError('ACCOUNT_NOT_FOUND', `No account ${accountId}.`, { accountId });
    const credits = (micros: string) => formatCredits(BigInt(micros));
    return balanceResponse(accountId, {
      available: credits(row.available), allowance: credits(row.allowance), promotional: credits(row.promotional),
      purchased: credits(row.purchased), held: credits(row.held), overdraft: credits(row.overdraft),
      allocation: credits(row.allocation), usedThisCycle: credits(row.used_this_cycle), cycleId: row.cycle_id,
      cycleEnd: row.cycle_end ? new Date(row.cycle_end).toISOString() : null, planId: row.plan_id, unlimited: row.unlimited,
    }, Number(row.stream_version));
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

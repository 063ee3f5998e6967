import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { ApiErrors, ApiIdParam, PortalReadable, RequireScope, PortalGrantOf, type PortalGrant } from '@tally/shared';
import { TransactionsQueryDto } from './history.dto';
import { TransactionPageDto } from './history.response.dto';
import { TransactionQueryService, type TransactionPage } from './transactions.query';

@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId/transactions')
export class TransactionsController {
  constructor(private readonly transactions: TransactionQueryService) {}

  /** Money movements, newest first; pass `nextCursor` back as `cursor` for the next page. */
  @Get()
  @RequireScope('accounts:read')
  @PortalReadable()
  @ApiOperation({ operationId: 'listTransactions', summary: 'Money movements with their cause, newest first, paginated' })
  @ApiOkResponse({ type: TransactionPageDto })
  @ApiErrors({ 404: ['ACCOUNT_NOT_FOUND'] })
  async list(@Param('accountId') accountId: string, @PortalGrantOf() portal: PortalGrant | undefined, @Query() query: TransactionsQueryDto): Promise<TransactionPage> {
    const page = await this.transactions.page(accountId, query);
    // Who did it is the operator's audit trail (API key names such as "support-tool"), not the end user's to read.
    return portal ? { ...page, items: page.items.map((item) => ({ ...item, actor: null })) } : page;
  }
}

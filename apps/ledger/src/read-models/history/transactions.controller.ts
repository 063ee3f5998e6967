import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '@tally/shared';
import { TransactionsQueryDto } from './history.dto';
import { TransactionQueryService, type TransactionPage } from './transactions.query';

@ApiTags('history')
@ApiBearerAuth()
@Controller('v1/accounts/:accountId/transactions')
export class TransactionsController {
  constructor(private readonly transactions: TransactionQueryService) {}

  /** Money movements, newest first; pass `nextCursor` back as `cursor` for the next page. */
  @Get()
  @RequireScope('accounts:read')
  @ApiOkResponse({ description: '{items:[{streamVersion, eventId, type, amount, balanceAfter, occurredAt, details}], nextCursor}' })
  @ApiBadRequestResponse({ description: 'VALIDATION_FAILED (limit, cursor, type, from, to, accountId)' })
  @ApiNotFoundResponse({ description: 'ACCOUNT_NOT_FOUND' })
  list(@Param('accountId') accountId: string, @Query() query: TransactionsQueryDto): Promise<TransactionPage> {
    return this.transactions.page(accountId, query);
  }
}

import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { ApiErrors, ApiIdParam, RequireScope } from '@tally/shared';
import { DeliveryLogHandler } from './delivery-log.handler';
import { DeliveryLogQuery } from './delivery-log.request.dto';
import { DeliveryLogResponseDto } from './delivery-log.response.dto';

@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId/notifications')
export class DeliveryLogHttpController {
  constructor(private readonly handler: DeliveryLogHandler) {}

  /** The delivery log: channel, type, attempts, status codes, next retry, state. */
  @Get()
  @RequireScope('accounts:read')
  @ApiOperation({ operationId: 'listNotifications', summary: 'The delivery log of emails and webhooks, newest first' })
  @ApiOkResponse({ type: DeliveryLogResponseDto })
  @ApiErrors({ 400: ['INVALID_ACCOUNT_ID'] })
  list(@Param('accountId') accountId: string, @Query() query: DeliveryLogQuery): Promise<DeliveryLogResponseDto> {
    return this.handler.list(accountId, query.limit ?? 50);
  }
}

import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '@tally/shared';
import { DeliveryLogHandler } from './delivery-log.handler';
import { DeliveryLogQuery } from './delivery-log.request.dto';

@ApiTags('notifications')
@ApiBearerAuth()
@Controller('v1/accounts/:accountId/notifications')
export class DeliveryLogHttpController {
  constructor(private readonly handler: DeliveryLogHandler) {}

  /** The delivery log: channel, type, attempts, status codes, next retry, state. */
  @Get()
  @RequireScope('accounts:read')
  list(@Param('accountId') accountId: string, @Query() query: DeliveryLogQuery) {
    return this.handler.list(accountId, query.limit ?? 50);
  }
}

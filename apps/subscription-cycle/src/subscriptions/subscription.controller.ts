import { Body, Controller, Delete, Get, Param, Put } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '@tally/shared';
import { PutSubscriptionRequestDto, PutSubscriptionResponseDto, SubscriptionResponseDto } from './subscription.dto';
import { SubscriptionHandler } from './subscription.handler';

@ApiTags('subscriptions')
@ApiBearerAuth()
@Controller('v1/accounts/:accountId/subscription')
export class SubscriptionController {
  constructor(private readonly handler: SubscriptionHandler) {}

  /** Subscribe, or change plan: an upgrade starts a new cycle now; a downgrade takes effect at the cycle end. */
  @Put()
  @RequireScope('accounts:write')
  @ApiOkResponse({ type: PutSubscriptionResponseDto })
  @ApiBadRequestResponse({ description: 'UNKNOWN_PLAN, INVALID_TIME_ZONE, INVALID_ACCOUNT_ID, SAME_PLAN, ...' })
  put(@Param('accountId') accountId: string, @Body() body: PutSubscriptionRequestDto): Promise<PutSubscriptionResponseDto> {
    return this.handler.put(accountId, body);
  }

  @Get()
  @RequireScope('accounts:read')
  @ApiOkResponse({ type: SubscriptionResponseDto })
  @ApiNotFoundResponse({ description: 'SUBSCRIPTION_NOT_FOUND' })
  get(@Param('accountId') accountId: string): Promise<SubscriptionResponseDto> {
    return this.handler.get(accountId);
  }

  /** Cancel at the end of the current cycle; the account then falls back to the free plan. */
  @Delete()
  @RequireScope('accounts:write')
  @ApiOkResponse({ type: PutSubscriptionResponseDto })
  cancel(@Param('accountId') accountId: string): Promise<PutSubscriptionResponseDto> {
    return this.handler.cancel(accountId);
  }
}

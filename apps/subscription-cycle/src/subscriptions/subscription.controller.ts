import { Body, Controller, Delete, Get, Param, Put, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { ApiErrors, ApiIdParam, ApiKeyName, RequireScope } from '@tally/shared';
import { CancelSubscriptionQueryDto, PutSubscriptionRequestDto, PutSubscriptionResponseDto, SubscriptionResponseDto } from './subscription.dto';
import { SubscriptionHandler } from './subscription.handler';

@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId/subscription')
export class SubscriptionController {
  constructor(private readonly handler: SubscriptionHandler) {}

  /** Subscribe, or change plan: an upgrade starts a new cycle now; a downgrade takes effect at the cycle end (a yearly plan's: its paid year's end). */
  @Put()
  @RequireScope('subscriptions:write')
  @ApiOperation({ operationId: 'putSubscription', summary: 'Subscribe, or change plan (upgrade now, downgrade at the cycle end; from a yearly plan, at the end of its paid year)' })
  @ApiOkResponse({ type: PutSubscriptionResponseDto })
  @ApiErrors({
    400: ['INVALID_ACCOUNT_ID', 'UNKNOWN_PLAN', 'PLAN_RETIRED', 'INVALID_TIME_ZONE', 'INVALID_ANCHOR', 'INTERVAL_MISMATCH', 'TIME_ZONE_REQUIRED', 'TIME_ZONE_IMMUTABLE'],
    404: ['NOT_SUBSCRIBED'],
    409: ['ALREADY_SUBSCRIBED', 'CONCURRENT_UPDATE'],
  })
  put(@Param('accountId') accountId: string, @Body() body: PutSubscriptionRequestDto, @ApiKeyName() actor: string | undefined): Promise<PutSubscriptionResponseDto> {
    return this.handler.put(accountId, body, actor);
  }

  @Get()
  @RequireScope('accounts:read')
  @ApiOperation({ operationId: 'getSubscription', summary: "The account's plan, current cycle and pending change" })
  @ApiOkResponse({ type: SubscriptionResponseDto })
  @ApiErrors({ 400: ['INVALID_ACCOUNT_ID'], 404: ['SUBSCRIPTION_NOT_FOUND'] })
  get(@Param('accountId') accountId: string): Promise<SubscriptionResponseDto> {
    return this.handler.get(accountId);
  }

  /**
   * Cancel at the end of the current cycle (a yearly plan: of its paid year), or with `effective=now` at once; the
   * account then falls back to the free plan.
   */
  @Delete()
  @RequireScope('subscriptions:write')
  @ApiOperation({
    operationId: 'cancelSubscription',
    summary: 'Cancel at the end of the current cycle, or of the paid year on a yearly plan, or now with effective=now (then the fallback plan)',
  })
  @ApiOkResponse({ type: PutSubscriptionResponseDto })
  @ApiErrors({ 400: ['INVALID_ACCOUNT_ID'], 404: ['SUBSCRIPTION_NOT_FOUND', 'NOT_SUBSCRIBED'], 409: ['CONCURRENT_UPDATE'] })
  cancel(@Param('accountId') accountId: string, @Query() query: CancelSubscriptionQueryDto, @ApiKeyName() actor: string | undefined): Promise<PutSubscriptionResponseDto> {
    return this.handler.cancel(accountId, actor, query.effective === 'now');
  }
}

import { Body, Controller, Delete, Get, Headers, Param, Put, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ApiErrors, ApiIdParam, ApiKeyName, RequireScope } from '@tally/shared';
import { CancelSubscriptionQueryDto, PutSubscriptionRequestDto, PutSubscriptionResponseDto, SubscriptionResponseDto } from './subscription.dto';
import { SubscriptionHandler, type SubscriptionAnswer } from './subscription.handler';
import { IDEMPOTENCY_KEY_HEADER, idempotencyKeyOf } from './subscription-requests.repository';

/** Set on an answer that is the stored first answer to a request under the same Idempotency-Key. */
const REPLAYED_HEADER = 'Idempotent-Replayed';

/** On the answer of PUT and DELETE: set when it is the stored first answer. */
const REPLAYED_RESPONSE_HEADER = {
  [REPLAYED_HEADER]: {
    description: '`true` when this is the stored first answer to a request under the same Idempotency-Key (nothing was decided again); absent otherwise',
    required: false,
    schema: { type: 'string', enum: ['true'] },
  },
};

/** The Idempotency-Key header, documented once for PUT and DELETE. */
const ApiIdempotencyKey = () =>
  ApiHeader({
    name: IDEMPOTENCY_KEY_HEADER,
    required: false,
    description:
      'Makes a retry safe: a request under a key the account used before gets that first answer (and Idempotent-Replayed: true) instead of being decided again; the key with another request (repeat the body as first sent) is 409 IDEMPOTENCY_CONFLICT. Kept IDEMPOTENCY_KEY_RETENTION_DAYS (30 by default). 1-128 characters of letters, digits and . _ : @ -',
  });

function answer(response: FastifyReply, { body, replayed }: SubscriptionAnswer): PutSubscriptionResponseDto {
  if (replayed) void response.header(REPLAYED_HEADER, 'true');
  return body;
}

@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId/subscription')
export class SubscriptionController {
  constructor(private readonly handler: SubscriptionHandler) {}

  /** Subscribe, or change plan: an upgrade starts a new cycle now; a downgrade takes effect at the cycle end (a yearly plan's: its paid year's end). */
  @Put()
  @RequireScope('subscriptions:write')
  @ApiOperation({ operationId: 'putSubscription', summary: 'Subscribe, or change plan (upgrade now, downgrade at the cycle end; from a yearly plan, at the end of its paid year)' })
  @ApiIdempotencyKey()
  @ApiOkResponse({ type: PutSubscriptionResponseDto, headers: REPLAYED_RESPONSE_HEADER })
  @ApiErrors({
    400: ['INVALID_ACCOUNT_ID', 'INVALID_IDEMPOTENCY_KEY', 'UNKNOWN_PLAN', 'PLAN_RETIRED', 'INVALID_TIME_ZONE', 'INVALID_ANCHOR', 'INTERVAL_MISMATCH', 'TIME_ZONE_REQUIRED', 'TIME_ZONE_IMMUTABLE'],
    404: ['NOT_SUBSCRIBED'],
    409: ['ALREADY_SUBSCRIBED', 'CONCURRENT_UPDATE', 'IDEMPOTENCY_CONFLICT'],
  })
  async put(
    @Param('accountId') accountId: string,
    @Body() body: PutSubscriptionRequestDto,
    @ApiKeyName() actor: string | undefined,
    @Headers(IDEMPOTENCY_KEY_HEADER) key: string | undefined,
    @Res({ passthrough: true }) response: FastifyReply,
  ): Promise<PutSubscriptionResponseDto> {
    return answer(response, await this.handler.put(accountId, body, actor, idempotencyKeyOf(key)));
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
  @ApiIdempotencyKey()
  @ApiOkResponse({ type: PutSubscriptionResponseDto, headers: REPLAYED_RESPONSE_HEADER })
  @ApiErrors({ 400: ['INVALID_ACCOUNT_ID', 'INVALID_IDEMPOTENCY_KEY'], 404: ['SUBSCRIPTION_NOT_FOUND', 'NOT_SUBSCRIBED'], 409: ['CONCURRENT_UPDATE', 'IDEMPOTENCY_CONFLICT'] })
  async cancel(
    @Param('accountId') accountId: string,
    @Query() query: CancelSubscriptionQueryDto,
    @ApiKeyName() actor: string | undefined,
    @Headers(IDEMPOTENCY_KEY_HEADER) key: string | undefined,
    @Res({ passthrough: true }) response: FastifyReply,
  ): Promise<PutSubscriptionResponseDto> {
    return answer(response, await this.handler.cancel(accountId, actor, query.effective === 'now', idempotencyKeyOf(key)));
  }
}

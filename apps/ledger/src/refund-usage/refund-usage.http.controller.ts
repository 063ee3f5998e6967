import { Body, Controller, HttpCode, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ApiErrors, ApiIdParam, ApiKeyName, RequireScope } from '@tally/shared';
import { AccountIdParam, IdParam } from '../accounts/account-id.decorator';
import { RefundUsageHandler } from './refund-usage.handler';
import { RefundUsageRequest } from './refund-usage.request.dto';
import { UsageRefundedResponseDto } from './refund-usage.response.dto';

/** 201 for a new refund; 200 for a repeat of one (same key, same content). */
@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId')
export class RefundUsageHttpController {
  constructor(private readonly handler: RefundUsageHandler) {}

  @Post('usage/:usageId/refunds')
  @HttpCode(201)
  @RequireScope('corrections:write')
  @ApiIdParam('usageId', 'The id the usage event was reported with')
  @ApiOperation({
    operationId: 'refundUsage',
    summary: 'Refund a usage debit in full or in part (a correction); idempotent by idempotencyKey',
    description:
      'Gives credits back to the buckets the debit took them from, unwinding it from its end (overdraft it incurred first, then the buckets in reverse order); ' +
      'credits of buckets expired since are forfeited unless restoreExpired (then a new promotional bucket without expiry). Refunds of one debit add up to at most its amount. See the README, "Corrections".',
  })
  @ApiCreatedResponse({ type: UsageRefundedResponseDto, description: 'Refunded' })
  @ApiOkResponse({ type: UsageRefundedResponseDto, description: 'A repeat (same key, same content): the first result, duplicate true, nothing refunded again' })
  @ApiErrors({
    400: ['AMOUNT_OUT_OF_RANGE', 'BALANCE_LIMIT_EXCEEDED', 'INVALID_AMOUNT', 'INVALID_COMMAND'],
    404: ['USAGE_NOT_FOUND'],
    409: ['IDEMPOTENCY_CONFLICT', 'REFUND_EXCEEDS_DEBIT'],
    503: ['ACCOUNT_BUSY'],
  })
  async refund(
    @AccountIdParam() accountId: string,
    @IdParam('usageId') usageId: string,
    @Body() body: RefundUsageRequest,
    @ApiKeyName() actor: string | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<UsageRefundedResponseDto> {
    const refunded = await this.handler.refund(accountId, usageId, body, actor);
    if (refunded.duplicate) res.status(200);
    return refunded;
  }
}

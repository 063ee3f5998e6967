import { Body, Controller, HttpCode, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ApiErrors, ApiIdParam, ApiKeyName, RequireScope } from '@tally/shared';
import { AccountIdParam } from '../accounts/account-id.decorator';
import { PurchaseHandler } from './purchase.handler';
import { PurchaseRequest } from './purchase.request.dto';
import { CreditsGrantedResponseDto } from '../grant/grant.response.dto';

/** 201 for a new purchase; 200 for a repeat of one (same payment reference, same content). */
@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId')
export class PurchaseHttpController {
  constructor(private readonly handler: PurchaseHandler) {}

  @Post('purchases')
  @HttpCode(201)
  @RequireScope('purchases:write')
  @ApiOperation({ operationId: 'purchaseCredits', summary: 'Add purchased credits: a catalogue pack or an amount; idempotent by paymentReference' })
  @ApiCreatedResponse({ type: CreditsGrantedResponseDto, description: 'Credited' })
  @ApiOkResponse({ type: CreditsGrantedResponseDto, description: 'A repeat (same key, same content): the first result, duplicate true, nothing credited again' })
  @ApiErrors({
    400: ['AMOUNT_OUT_OF_RANGE', 'BALANCE_LIMIT_EXCEEDED', 'INVALID_AMOUNT', 'INVALID_COMMAND', 'UNKNOWN_PACK'],
    409: ['IDEMPOTENCY_CONFLICT'],
    503: ['ACCOUNT_BUSY'],
  })
  async purchase(@AccountIdParam() accountId: string, @Body() body: PurchaseRequest, @ApiKeyName() actor: string | undefined, @Res({ passthrough: true }) res: FastifyReply): Promise<CreditsGrantedResponseDto> {
    const purchased = await this.handler.purchase(accountId, body, actor);
    if (purchased.duplicate) res.status(200);
    return purchased;
  }
}

import { Body, Controller, HttpCode, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { RequireScope } from '@tally/shared';
import { AccountIdParam } from '../accounts/account-id.decorator';
import { PurchaseHandler } from './purchase.handler';
import { PurchaseRequest } from './purchase.request.dto';

/** 201 for a new purchase; 200 for a repeat of one (same payment reference, same content). */
@ApiTags('accounts')
@ApiBearerAuth()
@Controller('v1/accounts/:accountId')
export class PurchaseHttpController {
  constructor(private readonly handler: PurchaseHandler) {}

  @Post('purchases')
  @HttpCode(201)
  @RequireScope('accounts:write')
  @ApiOperation({ summary: 'Add purchased credits: a catalogue pack or an amount; idempotent by paymentReference' })
  async purchase(@AccountIdParam() accountId: string, @Body() body: PurchaseRequest, @Res({ passthrough: true }) res: FastifyReply) {
    const purchased = await this.handler.purchase(accountId, body);
    if (purchased.duplicate) res.status(200);
    return purchased;
  }
}

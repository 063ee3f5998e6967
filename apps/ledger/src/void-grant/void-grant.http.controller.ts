import { Body, Controller, HttpCode, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ApiErrors, ApiGrantIdParam, ApiIdParam, ApiKeyName, RequireScope } from '@tally/shared';
import { AccountIdParam, GrantIdParam } from '../accounts/account-id.decorator';
import { VoidGrantHandler } from './void-grant.handler';
import { VoidGrantRequest } from './void-grant.request.dto';
import { GrantVoidedResponseDto } from './void-grant.response.dto';

/** 201 for a new void; 200 for a repeat of one (same key, same content). */
@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId')
export class VoidGrantHttpController {
  constructor(private readonly handler: VoidGrantHandler) {}

  @Post('grants/:grantId/void')
  @HttpCode(201)
  @RequireScope('corrections:write')
  @ApiGrantIdParam('grantId', 'The grantId a grant or purchase answered: `grant:<idempotencyKey>` or `purchase:<paymentReference>`')
  @ApiOperation({
    operationId: 'voidGrant',
    summary: 'Void a grant or a purchase (a correction): removes what is left of it; idempotent by idempotencyKey',
    description:
      'What was already spent stays spent (no overdraft); credits open holds reserved on it stay reserved and expire when a hold gives them back. ' +
      'A plan allowance is not voidable. See the README, "Corrections".',
  })
  @ApiCreatedResponse({ type: GrantVoidedResponseDto, description: 'Voided' })
  @ApiOkResponse({ type: GrantVoidedResponseDto, description: 'A repeat (same key, same content): the first result, duplicate true, nothing voided again' })
  @ApiErrors({
    400: ['INVALID_COMMAND'],
    404: ['GRANT_NOT_FOUND'],
    409: ['IDEMPOTENCY_CONFLICT', 'ALREADY_VOIDED', 'GRANT_NOT_VOIDABLE'],
    503: ['ACCOUNT_BUSY'],
  })
  async void(
    @AccountIdParam() accountId: string,
    @GrantIdParam() grantId: string,
    @Body() body: VoidGrantRequest,
    @ApiKeyName() actor: string | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<GrantVoidedResponseDto> {
    const voided = await this.handler.void(accountId, grantId, body, actor);
    if (voided.duplicate) res.status(200);
    return voided;
  }
}

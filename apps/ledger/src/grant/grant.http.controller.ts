import { Body, Controller, HttpCode, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ApiErrors, ApiIdParam, ApiKeyName, RequireScope } from '@tally/shared';
import { AccountIdParam } from '../accounts/account-id.decorator';
import { GrantHandler } from './grant.handler';
import { GrantRequest } from './grant.request.dto';
import { CreditsGrantedResponseDto } from './grant.response.dto';

/** 201 for a new grant; 200 for a repeat of one (same key, same content). */
@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId')
export class GrantHttpController {
  constructor(private readonly handler: GrantHandler) {}

  @Post('grants')
  @HttpCode(201)
  @RequireScope('grants:write')
  @ApiOperation({ operationId: 'grantCredits', summary: 'Grant promotional credits with an optional expiry; idempotent by idempotencyKey' })
  @ApiCreatedResponse({ type: CreditsGrantedResponseDto, description: 'Credited' })
  @ApiOkResponse({ type: CreditsGrantedResponseDto, description: 'A repeat (same key, same content): the first result, duplicate true, nothing credited again' })
  @ApiErrors({
    400: ['AMOUNT_OUT_OF_RANGE', 'BALANCE_LIMIT_EXCEEDED', 'INVALID_AMOUNT', 'INVALID_COMMAND'],
    409: ['IDEMPOTENCY_CONFLICT'],
    503: ['ACCOUNT_BUSY'],
  })
  async promote(@AccountIdParam() accountId: string, @Body() body: GrantRequest, @ApiKeyName() actor: string | undefined, @Res({ passthrough: true }) res: FastifyReply): Promise<CreditsGrantedResponseDto> {
    const granted = await this.handler.grant(accountId, body, actor);
    if (granted.duplicate) res.status(200);
    return granted;
  }
}

import { Body, Controller, HttpCode, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { RequireScope } from '@tally/shared';
import { AccountIdParam } from '../accounts/account-id.decorator';
import { GrantHandler } from './grant.handler';
import { GrantRequest } from './grant.request.dto';

/** 201 for a new grant; 200 for a repeat of one (same key, same content). */
@ApiTags('accounts')
@ApiBearerAuth()
@Controller('v1/accounts/:accountId')
export class GrantHttpController {
  constructor(private readonly handler: GrantHandler) {}

  @Post('grants')
  @HttpCode(201)
  @RequireScope('accounts:write')
  @ApiOperation({ summary: 'Grant promotional credits with an optional expiry; idempotent by idempotencyKey' })
  async promote(@AccountIdParam() accountId: string, @Body() body: GrantRequest, @Res({ passthrough: true }) res: FastifyReply) {
    const granted = await this.handler.grant(accountId, body);
    if (granted.duplicate) res.status(200);
    return granted;
  }
}

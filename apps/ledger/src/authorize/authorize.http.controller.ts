import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '@tally/shared';
import { AccountIdParam } from '../accounts/account-id.decorator';
import { AuthorizationRequest } from './authorization.request.dto';
import { AuthorizeHandler } from './authorize.handler';

/** Refuses an AI action before it starts when the account cannot pay. */
@ApiTags('authorizations')
@ApiBearerAuth()
@Controller('v1/accounts/:accountId')
export class AuthorizeHttpController {
  constructor(private readonly handler: AuthorizeHandler) {}

  @Post('authorizations')
  @HttpCode(200)
  @RequireScope('accounts:write')
  @ApiOperation({ summary: 'May this account spend N (or this estimated usage)? Optionally place a hold with a TTL' })
  @ApiResponse({ status: 402, description: '{code:"INSUFFICIENT_CREDITS", required, available, message, hint}' })
  authorize(@AccountIdParam() accountId: string, @Body() body: AuthorizationRequest) {
    return this.handler.authorize(accountId, body);
  }
}

import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { ApiErrors, ApiIdParam, ApiKeyName, RequireScope } from '@tally/shared';
import { AccountIdParam } from '../accounts/account-id.decorator';
import { AuthorizationRequest } from './authorization.request.dto';
import { AuthorizationResponseDto } from './authorization.response.dto';
import { AuthorizeHandler } from './authorize.handler';

/** Refuses an AI action before it starts when the account cannot pay. */
@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId')
export class AuthorizeHttpController {
  constructor(private readonly handler: AuthorizeHandler) {}

  @Post('authorizations')
  @HttpCode(200)
  @RequireScope('holds:write')
  @ApiOperation({ operationId: 'authorize', summary: 'May this account spend N (or this estimated usage)? Optionally place a hold with a TTL' })
  @ApiOkResponse({ type: AuthorizationResponseDto })
  @ApiErrors({
    400: ['AMOUNT_OUT_OF_RANGE', 'BALANCE_LIMIT_EXCEEDED', 'INVALID_AMOUNT', 'INVALID_COMMAND', 'UNPRICEABLE_USAGE'],
    402: ['INSUFFICIENT_CREDITS'],
    404: ['ACCOUNT_NOT_FOUND'],
    409: ['HOLD_CLOSED', 'IDEMPOTENCY_CONFLICT'],
    503: ['ACCOUNT_BUSY', 'CYCLE_RENEWAL_PENDING'],
  })
  authorize(@AccountIdParam() accountId: string, @Body() body: AuthorizationRequest, @ApiKeyName() actor: string | undefined): Promise<AuthorizationResponseDto> {
    return this.handler.authorize(accountId, body, actor);
  }
}

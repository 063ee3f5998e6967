import { Body, Controller, Get, HttpCode, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { ContractViolation } from '@tally/contracts';
import { ApiErrors, ApiIdParam, ApiKeyId, PortalGrantOf, PortalReadable, RequireScope, type PortalGrant } from '@tally/shared';
import { AccountIdParam } from '../accounts/account-id.decorator';
import { MintPortalTokenHandler, sessionOf } from './mint-portal-token.handler';
import { MintPortalTokenRequest, PortalSessionQuery } from './mint-portal-token.request.dto';
import { PortalSessionDto, PortalTokenResponseDto } from './mint-portal-token.response.dto';

@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId/portal-tokens')
export class MintPortalTokenHttpController {
  constructor(private readonly handler: MintPortalTokenHandler) {}

  /** A product's backend mints; the browser gets only the token (or the page URL with it in the fragment). */
  @Post()
  @HttpCode(201)
  @RequireScope('portal:mint')
  @ApiOperation({ operationId: 'mintPortalToken', summary: 'Mint a short-lived portal token: read-only access to this one account for a browser (the credits page)' })
  @ApiCreatedResponse({ type: PortalTokenResponseDto })
  @ApiErrors({ 404: ['ACCOUNT_NOT_FOUND'], 503: ['PORTAL_DISABLED'] })
  mint(@AccountIdParam() accountId: string, @Body() body: MintPortalTokenRequest, @ApiKeyId() keyId: string): Promise<PortalTokenResponseDto> {
    return this.handler.mint(accountId, body, keyId);
  }
}

@ApiBearerAuth()
@Controller('v1/portal/session')
export class PortalSessionHttpController {
  /**
   * What the presented portal token grants (the page configures itself from it). A service API key with
   * accounts:read gets the session of `?accountId` as a read-only page would (no expiry, no links).
   */
  @Get()
  @RequireScope('accounts:read')
  @PortalReadable()
  @ApiOperation({ operationId: 'getPortalSession', summary: "What the presented portal token grants: account, expiry, rights, the product's links, time zone" })
  @ApiOkResponse({ type: PortalSessionDto })
  session(@PortalGrantOf() grant: PortalGrant | undefined, @Query() query: PortalSessionQuery): PortalSessionDto {
    if (grant) return sessionOf(grant);
    if (query.accountId === undefined) throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'accountId', reason: 'is required with a service API key' }]);
    return { accountId: query.accountId, expiresAt: null, rights: ['read'], links: {} };
  }
}

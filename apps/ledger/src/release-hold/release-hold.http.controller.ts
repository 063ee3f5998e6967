import { Controller, Delete, HttpCode } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { ApiErrors, ApiIdParam, ApiKeyName, RequireScope } from '@tally/shared';
import { AccountIdParam, HoldIdParam } from '../accounts/account-id.decorator';
import { ReleaseHoldHandler } from './release-hold.handler';
import { ReleaseHoldResponseDto } from './release-hold.response.dto';

@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId')
export class ReleaseHoldHttpController {
  constructor(private readonly handler: ReleaseHoldHandler) {}

  @Delete('holds/:holdId')
  @HttpCode(200)
  @RequireScope('holds:write')
  @ApiIdParam('holdId', 'The hold id given when the hold was placed')
  @ApiOperation({ operationId: 'releaseHold', summary: 'Release a hold before it expires (a hold resolves at most once)' })
  @ApiOkResponse({ type: ReleaseHoldResponseDto })
  @ApiErrors({ 400: ['INVALID_COMMAND'], 503: ['ACCOUNT_BUSY'] })
  release(@AccountIdParam() accountId: string, @HoldIdParam() holdId: string, @ApiKeyName() actor: string | undefined): Promise<ReleaseHoldResponseDto> {
    return this.handler.release(accountId, holdId, actor);
  }
}

import { Controller, Delete, HttpCode } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '@tally/shared';
import { AccountIdParam, HoldIdParam } from '../accounts/account-id.decorator';
import { ReleaseHoldHandler } from './release-hold.handler';

@ApiTags('authorizations')
@ApiBearerAuth()
@Controller('v1/accounts/:accountId')
export class ReleaseHoldHttpController {
  constructor(private readonly handler: ReleaseHoldHandler) {}

  @Delete('holds/:holdId')
  @HttpCode(200)
  @RequireScope('accounts:write')
  @ApiOperation({ summary: 'Release a hold before it expires (a hold resolves at most once)' })
  release(@AccountIdParam() accountId: string, @HoldIdParam() holdId: string) {
    return this.handler.release(accountId, holdId);
  }
}

import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '@tally/shared';
import { NotificationSettingsHandler } from './notification-settings.handler';
import { NotificationSettingsRequest, type NotificationSettingsResponse } from './notification-settings.request.dto';

@ApiTags('notification settings')
@ApiBearerAuth()
@Controller('v1/accounts/:accountId/notification-settings')
export class NotificationSettingsHttpController {
  constructor(private readonly handler: NotificationSettingsHandler) {}

  @Get()
  @RequireScope('accounts:read')
  get(@Param('accountId') accountId: string): Promise<NotificationSettingsResponse> {
    return this.handler.get(accountId);
  }

  @Put()
  @RequireScope('accounts:write')
  put(@Param('accountId') accountId: string, @Body() body: NotificationSettingsRequest): Promise<NotificationSettingsResponse> {
    return this.handler.put(accountId, body);
  }
}

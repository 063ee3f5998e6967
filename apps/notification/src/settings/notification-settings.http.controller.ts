import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { ApiErrors, ApiIdParam, ApiKeyAllows, RequireScope } from '@tally/shared';
import { NotificationSettingsHandler } from './notification-settings.handler';
import { NotificationSettingsRequest } from './notification-settings.request.dto';
import { NotificationSettingsResponseDto } from './notification-settings.response.dto';

@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId/notification-settings')
export class NotificationSettingsHttpController {
  constructor(private readonly handler: NotificationSettingsHandler) {}

  @Get()
  @RequireScope('accounts:read')
  @ApiOperation({
    operationId: 'getNotificationSettings',
    summary: "The account's notification channels and per-type choices",
    description: 'The webhook URL whole only to a key with notifications:write (the URL may itself be a credential); to others its origin and "/…".',
  })
  @ApiOkResponse({ type: NotificationSettingsResponseDto })
  @ApiErrors({ 400: ['INVALID_ACCOUNT_ID'], 404: ['NOTIFICATION_SETTINGS_NOT_FOUND'] })
  get(@Param('accountId') accountId: string, @ApiKeyAllows('notifications:write') mayWrite: boolean): Promise<NotificationSettingsResponseDto> {
    return this.handler.get(accountId, { wholeWebhookUrl: mayWrite });
  }

  @Put()
  @RequireScope('notifications:write')
  @ApiOperation({ operationId: 'putNotificationSettings', summary: "Replace the account's notification settings" })
  @ApiOkResponse({ type: NotificationSettingsResponseDto })
  @ApiErrors({ 400: ['INVALID_ACCOUNT_ID'] })
  put(@Param('accountId') accountId: string, @Body() body: NotificationSettingsRequest): Promise<NotificationSettingsResponseDto> {
    return this.handler.put(accountId, body);
  }
}

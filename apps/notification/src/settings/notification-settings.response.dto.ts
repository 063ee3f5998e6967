import { ApiProperty } from '@nestjs/swagger';
import { NOTIFICATION_TYPES } from '../notification-type.model';
import type { NotificationSettingsResponse } from './notification-settings.request.dto';

/** What GET and PUT return: the secret never, only whether one is set. */
export class NotificationSettingsResponseDto implements NotificationSettingsResponse {
  @ApiProperty() accountId!: string;
  @ApiProperty({ type: String, nullable: true }) email!: string | null;
  @ApiProperty({ type: String, nullable: true }) webhookUrl!: string | null;
  @ApiProperty() webhookSecretSet!: boolean;
  @ApiProperty({
    type: 'object',
    properties: Object.fromEntries(NOTIFICATION_TYPES.map((type) => [type, { type: 'boolean' }])),
    required: [...NOTIFICATION_TYPES],
    additionalProperties: false,
  })
  notificationTypes!: Record<string, boolean>;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
}

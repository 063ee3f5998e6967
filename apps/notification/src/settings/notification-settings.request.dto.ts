import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsEmail, IsObject, IsOptional, IsString, MaxLength } from 'class-validator';
import { IsOptionalNotNull } from '@tally/contracts';

/**
 * PUT body: replaces the account's settings. Omitted or null email / webhookUrl = that channel is off (null is
 * refused for the other fields, where it means nothing).
 * webhookSecret is write-only; when omitted, an already stored secret is kept (while a webhook URL is set).
 */
export class NotificationSettingsRequest {
  @ApiPropertyOptional({ example: 'ops@example.com', nullable: true })
  @IsOptional() @IsEmail({}, { message: 'email must be a well-formed email address' }) @MaxLength(320)
  email?: string | null;

  @ApiPropertyOptional({ example: 'https://example.com/hooks/tally', nullable: true })
  @IsOptional() @IsString() @MaxLength(2048)
  webhookUrl?: string | null;

  @ApiPropertyOptional({ description: 'Standard Webhooks secret: whsec_ + base64 of at least 24 random bytes. Never returned.', writeOnly: true })
  @IsOptionalNotNull() @IsString() @MaxLength(200)
  webhookSecret?: string;

  @ApiPropertyOptional({
    description: 'Per-type choices; omitted types keep their default (low_credit, credits_depleted on; credits_renewed, purchase_receipt off).',
    example: { low_credit: true, credits_renewed: true },
  })
  @IsOptionalNotNull() @IsObject()
  notificationTypes?: Record<string, unknown>;
}

/** What GET and PUT return: the secret never, only whether one is set. */
export interface NotificationSettingsResponse {
  accountId: string;
  email: string | null;
  webhookUrl: string | null;
  webhookSecretSet: boolean;
  notificationTypes: Record<string, boolean>;
  updatedAt: string;
}

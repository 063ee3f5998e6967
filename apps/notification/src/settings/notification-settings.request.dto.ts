import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsObject, IsOptional, IsString, MaxLength, ValidateBy, isEmail } from 'class-validator';
import addressparser from 'nodemailer/lib/addressparser';
import { IsOptionalNotNull } from '@tally/contracts';
import { NOTIFICATION_TYPES } from '../notification-type.model';

/**
 * An address validator's isEmail takes (an ASCII local part: nodemailer sends it without asking the server for
 * SMTPUTF8) that nodemailer's address parser reads back unchanged: it drops the quotes of a quoted local part, so
 * `"a>b"@example.com` would be sent to another mailbox, `"a,b"@…` to none.
 */
const IsDeliverableEmail = () =>
  ValidateBy({
    name: 'isDeliverableEmail',
    validator: {
      validate: (value) => {
        if (typeof value !== 'string' || !isEmail(value, { allow_utf8_local_part: false })) return false;
        const parsed = addressparser(value, { flatten: true });
        return parsed.length === 1 && parsed[0].address === value;
      },
      defaultMessage: () => 'email must be a well-formed email address with an unquoted ASCII local part',
    },
  });

/**
 * PUT body: replaces the account's settings. Omitted or null email / webhookUrl = that channel is off (null is
 * refused for the other fields, where it means nothing).
 * webhookSecret is write-only; when omitted, an already stored secret is kept (while the same webhook URL is set: a
 * URL changed at all, even its path, needs its own secret).
 */
export class NotificationSettingsRequest {
  @ApiPropertyOptional({ type: String, maxLength: 320, example: 'ops@example.com', nullable: true, description: 'A well-formed email address, its local part unquoted ASCII; null or omitted: no email' })
  @IsOptional() @IsDeliverableEmail() @MaxLength(320)
  email?: string | null;

  @ApiPropertyOptional({
    type: String,
    maxLength: 2048,
    example: 'https://example.com/hooks/tally',
    nullable: true,
    description: 'An absolute https URL (plain http only for allowlisted hosts), no credentials, no fragment; null or omitted: no webhook',
  })
  @IsOptional() @IsString() @MaxLength(2048)
  webhookUrl?: string | null;

  @ApiPropertyOptional({
    description: 'Standard Webhooks secret: whsec_ + base64 of at least 24 random bytes; required with a webhook URL unless one is stored for the same URL: a URL changed at all (another origin, path or query: receivers often share a host) needs a new one. Never returned.',
    pattern: '^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$',
    maxLength: 200,
    writeOnly: true,
  })
  @IsOptionalNotNull() @IsString() @MaxLength(200)
  webhookSecret?: string;

  @ApiPropertyOptional({
    type: 'object',
    properties: Object.fromEntries(NOTIFICATION_TYPES.map((type) => [type, { type: 'boolean' }])),
    additionalProperties: false,
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

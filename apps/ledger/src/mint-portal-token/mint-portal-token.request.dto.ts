import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsInt, IsString, Matches, Max, MaxLength, Min, ValidateBy, isURL } from 'class-validator';
import { ID_PATTERN, IsOptionalNotNull } from '@tally/contracts';
import { API_ID_PATTERN, PORTAL_LINK_MAX_LENGTH } from '@tally/shared';
import { isValidZone } from '@tally/subscription-domain';

export const PORTAL_TOKEN_TTL = { min: 60, max: 86_400, default: 3_600 } as const;

const HTTP_URL = { protocols: ['http', 'https'], require_protocol: true, require_tld: false };

/**
 * An absolute http(s) URL as validator reads it that WHATWG's URL parser (browsers', and Node's, which the handler
 * normalises the link with) reads too: validator takes hosts such as `xn--zz.com` or `⒈.com` that URL refuses. Its
 * normalised form (what the token carries) is at most PORTAL_LINK_MAX_LENGTH long: percent-encoding lengthens `{`,
 * `"` or non-ASCII characters threefold or more, and the token's reader refuses a longer link.
 */
const IsHttpUrl = (field: string) =>
  ValidateBy({
    name: 'isHttpUrl',
    validator: {
      // A link already too long as sent is MaxLength's to name (one issue per field).
      validate: (value) =>
        typeof value === 'string' && (value.length > PORTAL_LINK_MAX_LENGTH || (isURL(value, HTTP_URL) && URL.canParse(value) && new URL(value).href.length <= PORTAL_LINK_MAX_LENGTH)),
      defaultMessage: () => `${field} must be an absolute http(s) URL of at most ${PORTAL_LINK_MAX_LENGTH} characters once normalised (percent-encoded)`,
    },
  });

/** An IANA time zone as the billing calendar accepts it (`Europe/Berlin`, `UTC`; no fixed offsets). */
const IsIanaZone = () =>
  ValidateBy({ name: 'isIanaZone', validator: { validate: (value) => isValidZone(value), defaultMessage: () => 'timeZone must be an IANA time zone such as Europe/Berlin' } });

export class MintPortalTokenRequest {
  @ApiPropertyOptional({ type: 'integer', minimum: PORTAL_TOKEN_TTL.min, maximum: PORTAL_TOKEN_TTL.max, description: `How long the token is valid, in seconds; ${PORTAL_TOKEN_TTL.default} when omitted` })
  @IsOptionalNotNull() @IsInt() @Min(PORTAL_TOKEN_TTL.min) @Max(PORTAL_TOKEN_TTL.max)
  ttlSeconds?: number;

  @ApiPropertyOptional({ description: 'Whether the page may offer "Buy credits" (through checkoutUrl); false (read only) when omitted' })
  @IsOptionalNotNull() @IsBoolean()
  purchase?: boolean;

  @ApiPropertyOptional({ format: 'uri', maxLength: 2048, example: 'https://chat.example/billing/checkout', description: "The product's checkout page; signed into the token, at most 2048 characters once normalised (percent-encoded)" })
  @IsOptionalNotNull() @IsString() @MaxLength(PORTAL_LINK_MAX_LENGTH) @IsHttpUrl('checkoutUrl')
  checkoutUrl?: string;

  @ApiPropertyOptional({ format: 'uri', maxLength: 2048, example: 'https://chat.example/billing/plans', description: "The product's upgrade page; signed into the token, at most 2048 characters once normalised (percent-encoded)" })
  @IsOptionalNotNull() @IsString() @MaxLength(PORTAL_LINK_MAX_LENGTH) @IsHttpUrl('upgradeUrl')
  upgradeUrl?: string;

  @ApiPropertyOptional({ maxLength: 64, example: 'Europe/Berlin', description: 'IANA time zone the page shows dates in (the reset date)' })
  @IsOptionalNotNull() @IsString() @MaxLength(64) @IsIanaZone()
  timeZone?: string;
}

/** `GET /v1/portal/session?accountId=`: which account a service API key asks about (a portal token names its own). */
export class PortalSessionQuery {
  @ApiPropertyOptional({ pattern: API_ID_PATTERN, description: 'Required with a service API key; with a portal token, must be its account when given' })
  @IsOptionalNotNull()
  @Matches(ID_PATTERN, { message: 'accountId must be 1-128 characters of letters, digits and . _ : @ -' })
  accountId?: string;
}

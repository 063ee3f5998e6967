import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { PORTAL_RIGHTS } from '@tally/shared';

export class PortalLinksDto {
  @ApiPropertyOptional({ format: 'uri' }) checkoutUrl?: string;
  @ApiPropertyOptional({ format: 'uri' }) upgradeUrl?: string;
}

/** What a portal token grants, as the credits page configures itself from it. */
export class PortalSessionDto {
  @ApiProperty() accountId!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'When the token expires; null for a service API key' }) expiresAt!: string | null;
  @ApiProperty({ type: [String], enum: PORTAL_RIGHTS, example: ['read'], description: "`read`, and `purchase` when the page may offer buying credits" }) rights!: string[];
  @ApiProperty({ type: PortalLinksDto }) links!: PortalLinksDto;
  @ApiPropertyOptional({ example: 'Europe/Berlin', description: 'IANA time zone to show dates in' }) timeZone?: string;
}

export class PortalTokenResponseDto {
  @ApiProperty({ description: 'The portal token: `Authorization: Bearer <token>` on the read routes of this account' }) token!: string;
  @ApiProperty() accountId!: string;
  @ApiProperty({ format: 'date-time', description: 'When the token expires' }) expiresAt!: string;
  @ApiProperty({ type: [String], enum: PORTAL_RIGHTS, example: ['read'], description: '`read`, and `purchase` when minted with purchase: true' }) rights!: string[];
  @ApiProperty({ type: PortalLinksDto }) links!: PortalLinksDto;
  @ApiPropertyOptional({ example: 'Europe/Berlin' }) timeZone?: string;
  @ApiProperty({ format: 'uri', example: 'http://localhost:3002/portal/#token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhY2N0LTEifQ.c2ln', description: 'The credits page with the token in the URL fragment (never sent to a server)' }) pageUrl!: string;
}

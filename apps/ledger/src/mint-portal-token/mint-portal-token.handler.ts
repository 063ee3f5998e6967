import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock, type PortalGrant, type PortalTokenCodec } from '@tally/shared';
import { LedgerConfig } from '../config/ledger.config';
import { LedgerError } from '../ledger.errors';
import { BalanceReadRepository } from '../read-models/balance/balance.repository';
import type { MintPortalTokenRequest } from './mint-portal-token.request.dto';
import { PORTAL_TOKEN_TTL } from './mint-portal-token.request.dto';
import type { PortalSessionDto, PortalTokenResponseDto } from './mint-portal-token.response.dto';
import { PORTAL_TOKEN_CODEC } from './portal-access.provider';

/** The page and its own API read the grant the same way: the token's claims, as JSON. */
export function sessionOf(grant: PortalGrant): PortalSessionDto {
  return {
    accountId: grant.accountId,
    expiresAt: grant.expiresAt.toISOString(),
    rights: grant.rights,
    links: grant.links,
    ...(grant.timeZone !== undefined && { timeZone: grant.timeZone }),
  };
}

/**
 * Mints a portal token for an account that has a balance: read rights, purchase when asked, the product's links and
 * the page's time zone signed in. Appends nothing (a token is not a money change); the token is never logged.
 */
@Injectable()
export class MintPortalTokenHandler {
  private readonly pageBase: string;

  constructor(
    @Inject(PORTAL_TOKEN_CODEC) private readonly codec: PortalTokenCodec | null,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly balances: BalanceReadRepository,
    config: LedgerConfig,
  ) {
    this.pageBase = (config.PORTAL_PAGE_BASE_URL ?? `http://localhost:${config.PORT}`).replace(/\/+$/, '');
  }

  /** `keyId`: the minting API key's id, signed in so the token stops reading once that key may no longer mint it. */
  async mint(accountId: string, request: MintPortalTokenRequest, keyId: string): Promise<PortalTokenResponseDto> {
    if (!this.codec) throw new LedgerError('PORTAL_DISABLED', 'Portal tokens are off: the ledger has no PORTAL_TOKEN_SECRET configured.');
    await this.balances.require(accountId);
    const issuedAt = this.clock.now();
    const grant: PortalGrant = {
      accountId,
      tokenId: randomUUID(),
      issuedAt,
      expiresAt: new Date(issuedAt.getTime() + (request.ttlSeconds ?? PORTAL_TOKEN_TTL.default) * 1000),
      rights: request.purchase ? ['read', 'purchase'] : ['read'],
      // Normalised as the verifier reads them (HTTPS://… → https://…): a link the DTO accepts is one the token keeps.
      links: {
        ...(request.checkoutUrl !== undefined && { checkoutUrl: new URL(request.checkoutUrl).href }),
        ...(request.upgradeUrl !== undefined && { upgradeUrl: new URL(request.upgradeUrl).href }),
      },
      ...(request.timeZone !== undefined && { timeZone: request.timeZone }),
      mintedBy: keyId,
    };
    const token = await this.codec.sign(grant);
    // A JWT's times are whole seconds: answer the expiry the token carries.
    const expiresAt = new Date(Math.floor(grant.expiresAt.getTime() / 1000) * 1000);
    return { token, ...sessionOf({ ...grant, expiresAt }), expiresAt: expiresAt.toISOString(), pageUrl: `${this.pageBase}/portal/#token=${token}` };
  }
}

import type * as Jose from 'jose/dist/types/index';
import { API_KEY_ID_PATTERN } from './api-keys.config';

/*
 * jose ships ES modules only, declared through package.json `exports`, which this repository's TypeScript
 * resolution (`moduleResolution: node`) does not read: its types are imported from their file, and the module is
 * required (Node 22 and later require ES modules natively; Jest compiles it, see jest.config.js).
 */
const { SignJWT, jwtVerify, errors } = require('jose') as typeof Jose;

export const PORTAL_TOKEN_ISSUER = 'tally';
export const PORTAL_TOKEN_AUDIENCE = 'tally-portal';
export const PORTAL_RIGHTS = ['read', 'purchase'] as const;
export type PortalRight = (typeof PORTAL_RIGHTS)[number];

/** Where the credits page sends people to buy credits or upgrade: the product's own pages, signed into the token. */
export interface PortalLinks {
  checkoutUrl?: string;
  upgradeUrl?: string;
}

/** What a portal token lets its bearer do: read one account (and, with `purchase`, start a purchase through `links`). */
export interface PortalGrant {
  accountId: string;
  /** The token's `jti`. */
  tokenId: string;
  issuedAt: Date;
  expiresAt: Date;
  rights: PortalRight[];
  links: PortalLinks;
  /** IANA zone the page shows dates in (the account's reset date). */
  timeZone?: string;
  /**
   * The id of the API key that minted it (ApiKey.id, claim `mkey`): the token reads only while a configured key with
   * that id may still mint for its account. Absent on tokens minted before session 55 (read until they expire, ≤ 24 h).
   */
  mintedBy?: string;
}

export type PortalTokenRefusal = 'expired' | 'invalid';

/** A bearer that is not a valid portal token: `expired`, or `invalid` (signature, audience, issuer, shape). */
export class PortalTokenError extends Error {
  constructor(
    readonly reason: PortalTokenRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'PortalTokenError';
  }
}

/** The signing secrets: tokens are signed with `secret` and verified with it or, during a rotation, `previousSecret`. */
export interface PortalTokenSecrets {
  secret: string;
  previousSecret?: string;
}

/** A compact JWS (three base64url segments); service API keys are told apart by failing to match a configured key first. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
export const hasPortalTokenShape = (bearer: string): boolean => JWT_SHAPE.test(bearer);

const seconds = (date: Date): number => Math.floor(date.getTime() / 1000);
/** The longest link a portal token carries (checkout, upgrade), as normalised by WHATWG's URL. */
export const PORTAL_LINK_MAX_LENGTH = 2048;

const isHttpUrl = (value: unknown): value is string => typeof value === 'string' && value.length <= PORTAL_LINK_MAX_LENGTH && /^https?:\/\/\S+$/.test(value);

/**
 * Portal tokens: HS256 JWTs (jose) with iss `tally`, aud `tally-portal`, sub the account id, iat, exp, jti, and the
 * grant's `rights`, `links` and `tz`. Verification takes the instant to check expiry at, so tests need no waiting.
 */
export class PortalTokenCodec {
  private readonly current: Uint8Array;
  private readonly previous: Uint8Array | undefined;

  constructor(secrets: PortalTokenSecrets) {
    const encoder = new TextEncoder();
    this.current = encoder.encode(secrets.secret);
    this.previous = secrets.previousSecret === undefined ? undefined : encoder.encode(secrets.previousSecret);
  }

  sign(grant: PortalGrant): Promise<string> {
    return new SignJWT({
      rights: grant.rights,
      links: grant.links,
      ...(grant.timeZone !== undefined && { tz: grant.timeZone }),
      ...(grant.mintedBy !== undefined && { mkey: grant.mintedBy }),
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(PORTAL_TOKEN_ISSUER)
      .setAudience(PORTAL_TOKEN_AUDIENCE)
      .setSubject(grant.accountId)
      .setJti(grant.tokenId)
      .setIssuedAt(seconds(grant.issuedAt))
      .setExpirationTime(seconds(grant.expiresAt))
      .sign(this.current);
  }

  /** The grant a token carries, checked at `now`; throws PortalTokenError. Never quotes the token. */
  async verify(token: string, now: Date): Promise<PortalGrant> {
    if (!hasPortalTokenShape(token)) throw new PortalTokenError('invalid', 'The bearer is not a portal token.');
    try {
      return grantOf(await this.verifyWithEither(token, now));
    } catch (error) {
      if (error instanceof PortalTokenError) throw error;
      if (error instanceof errors.JWTExpired) throw new PortalTokenError('expired', 'The portal token has expired; mint a new one.');
      throw new PortalTokenError('invalid', 'The portal token is not valid (signature, issuer, audience or claims).');
    }
  }

  private async verifyWithEither(token: string, now: Date): Promise<Jose.JWTPayload> {
    const options: Jose.JWTVerifyOptions = {
      algorithms: ['HS256'],
      issuer: PORTAL_TOKEN_ISSUER,
      audience: PORTAL_TOKEN_AUDIENCE,
      requiredClaims: ['sub', 'iat', 'exp', 'jti'],
      currentDate: now,
    };
    try {
      return (await jwtVerify(token, this.current, options)).payload;
    } catch (error) {
      // Only a signature the current secret does not match is tried with the previous one (a rotation in progress).
      if (this.previous === undefined || !(error instanceof errors.JWSSignatureVerificationFailed)) throw error;
      return (await jwtVerify(token, this.previous, options)).payload;
    }
  }
}

/** The claims of a verified token as a grant; a signed token with claims Tally never writes is refused all the same. */
function grantOf(payload: Jose.JWTPayload): PortalGrant {
  const { sub, jti, iat, exp, rights, links, tz, mkey } = payload;
  const linkEntries = typeof links === 'object' && links !== null && !Array.isArray(links) ? Object.entries(links) : undefined;
  const valid =
    typeof sub === 'string' && typeof jti === 'string' && typeof iat === 'number' && typeof exp === 'number' &&
    Array.isArray(rights) && rights.includes('read') && rights.every((right) => (PORTAL_RIGHTS as readonly unknown[]).includes(right)) &&
    linkEntries !== undefined && linkEntries.every(([name, url]) => (name === 'checkoutUrl' || name === 'upgradeUrl') && isHttpUrl(url)) &&
    (tz === undefined || typeof tz === 'string') &&
    (mkey === undefined || (typeof mkey === 'string' && API_KEY_ID_PATTERN.test(mkey)));
  if (!valid) throw new PortalTokenError('invalid', 'The portal token carries claims Tally does not issue.');
  return {
    accountId: sub,
    tokenId: jti,
    issuedAt: new Date(iat * 1000),
    expiresAt: new Date(exp * 1000),
    rights: rights as PortalRight[],
    links: Object.fromEntries(linkEntries) as PortalLinks,
    ...(tz !== undefined && { timeZone: tz as string }),
    ...(mkey !== undefined && { mintedBy: mkey as string }),
  };
}

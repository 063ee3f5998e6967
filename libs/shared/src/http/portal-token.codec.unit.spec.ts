import { createHmac } from 'node:crypto';
import { ApiKeyRegistry, hashApiKey, SCOPES } from './api-keys.config';
import { PortalTokenCodec, PortalTokenError, type PortalGrant } from './portal-token.codec';

const SECRET = 'portal-secret-of-at-least-32-characters-0001';
const OLD_SECRET = 'portal-secret-of-at-least-32-characters-0000';
const issuedAt = new Date('2026-11-20T10:00:00Z');
const grant: PortalGrant = {
  accountId: 'acct-portal',
  tokenId: 'tok-1',
  issuedAt,
  expiresAt: new Date('2026-11-20T11:00:00Z'),
  rights: ['read', 'purchase'],
  links: { checkoutUrl: 'https://shop.example/checkout?plan=pro', upgradeUrl: 'https://shop.example/upgrade' },
  timeZone: 'Europe/Berlin',
  mintedBy: '0123456789abcdef',
};
const at = (iso: string) => new Date(iso);

/** Base64url of a JSON object, as a JWT segment. */
const segment = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** A JWT signed by hand with HMAC-SHA256, so tests can write claims the codec itself never would. */
const handSigned = (payload: object, secret = SECRET, header: object = { alg: 'HS256', typ: 'JWT' }) => {
  const unsigned = `${segment(header)}.${segment(payload)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
};
const claims = { iss: 'tally', aud: 'tally-portal', sub: 'acct-portal', jti: 'tok-1', iat: 1_795_000_000, exp: 1_795_003_600, rights: ['read'], links: {} };
const withinClaims = at('2026-11-18T11:30:00Z'); // between the hand-signed claims' iat (11:06:40) and exp (12:06:40)

/** Given a codec with these secrets, when it verifies `token` at `now`, then it refuses it for `reason`. */
const refusal = async (codec: PortalTokenCodec, token: string, now: Date) => {
  try {
    await codec.verify(token, now);
  } catch (error) {
    if (error instanceof PortalTokenError) return { reason: error.reason, message: error.message };
    throw error;
  }
  return undefined;
};

describe('portal tokens', () => {
  const codec = new PortalTokenCodec({ secret: SECRET });

  it('given a minted grant, when verified before it expires, then the same grant comes back (claims round trip)', async () => {
    const token = await codec.sign(grant);
    expect(await codec.verify(token, at('2026-11-20T10:59:59Z'))).toEqual(grant);
  });

  it('given a grant without purchase, links or zone, when verified, then it reads only, with no links and no zone', async () => {
    const { mintedBy: _mintedBy, ...unattributed } = grant;
    const readOnly: PortalGrant = { ...unattributed, rights: ['read'], links: {}, timeZone: undefined };
    const verified = await codec.verify(await codec.sign(readOnly), at('2026-11-20T10:30:00Z'));
    expect(verified).toEqual({ accountId: 'acct-portal', tokenId: 'tok-1', issuedAt, expiresAt: grant.expiresAt, rights: ['read'], links: {} });
    expect('timeZone' in verified).toBe(false);
  });

  it('carries the agreed claims: iss, aud, sub, iat, exp, jti, rights, links, tz, mkey', async () => {
    const token = await codec.sign(grant);
    const [header, payload] = token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(payload).toEqual({
      iss: 'tally', aud: 'tally-portal', sub: 'acct-portal', jti: 'tok-1', iat: 1_795_168_800, exp: 1_795_172_400,
      rights: ['read', 'purchase'], links: grant.links, tz: 'Europe/Berlin', mkey: '0123456789abcdef',
    });
  });

  it('given a minted token, when verified at or after its expiry, then it is refused as expired', async () => {
    const token = await codec.sign(grant);
    expect(await refusal(codec, token, at('2026-11-20T11:00:00Z'))).toEqual({ reason: 'expired', message: expect.stringContaining('expired') });
    expect(await refusal(codec, token, at('2026-11-21T00:00:00Z'))).toMatchObject({ reason: 'expired' });
  });

  it('given a token whose payload or signature was changed, when verified, then it is invalid (never expired, never quoted)', async () => {
    const token = await codec.sign(grant);
    const [header, , signature] = token.split('.');
    const otherAccount = `${header}.${segment({ ...claims, sub: 'acct-other', iat: 1_795_168_800, exp: 1_795_172_400 })}.${signature}`;
    const flipped = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    for (const tampered of [otherAccount, flipped]) {
      const refused = await refusal(codec, tampered, at('2026-11-20T10:30:00Z'));
      expect(refused).toMatchObject({ reason: 'invalid' });
      expect(refused?.message).not.toContain(tampered);
    }
  });

  it('given tokens for another audience or issuer, or signed with another secret, when verified, then they are invalid', async () => {
    for (const token of [handSigned({ ...claims, aud: 'someone-else' }), handSigned({ ...claims, iss: 'not-tally' }), handSigned(claims, 'another-secret-of-at-least-32-characters!')]) {
      expect(await refusal(codec, token, withinClaims)).toMatchObject({ reason: 'invalid' });
    }
    expect(await codec.verify(handSigned(claims), withinClaims)).toMatchObject({ accountId: 'acct-portal', rights: ['read'] });
  });

  it('given garbage, an unsigned token or another algorithm, when verified, then it is invalid', async () => {
    const none = `${segment({ alg: 'none' })}.${segment(claims)}.`;
    const hs512 = handSigned(claims, SECRET, { alg: 'HS512' });
    for (const token of ['', 'not-a-token', 'a.b.c', none, hs512]) {
      expect(await refusal(codec, token, withinClaims)).toMatchObject({ reason: 'invalid' });
    }
  });

  it('given signed claims Tally never writes (no read right, unknown right, a javascript: link, missing jti), when verified, then they are invalid', async () => {
    const { jti: _jti, ...withoutJti } = claims;
    for (const payload of [
      { ...claims, rights: ['purchase'] },
      { ...claims, rights: ['read', 'spend'] },
      { ...claims, links: { checkoutUrl: 'javascript:alert(1)' } },
      { ...claims, links: { elsewhere: 'https://x.example' } },
      withoutJti,
      { ...claims, mkey: 'not-a-key-id' },
      { ...claims, mkey: 42 },
    ]) {
      expect(await refusal(codec, handSigned(payload), withinClaims)).toMatchObject({ reason: 'invalid' });
    }
  });

  describe('rotation', () => {
    it('given a token signed with the previous secret, when the codec holds it as previous, then it still verifies', async () => {
      const before = new PortalTokenCodec({ secret: OLD_SECRET });
      const rotated = new PortalTokenCodec({ secret: SECRET, previousSecret: OLD_SECRET });
      const token = await before.sign(grant);
      expect(await rotated.verify(token, at('2026-11-20T10:30:00Z'))).toEqual(grant);
      expect(await refusal(codec, token, at('2026-11-20T10:30:00Z'))).toMatchObject({ reason: 'invalid' });
    });

    it('given a rotated codec, when it signs, then it signs with the current secret only', async () => {
      const rotated = new PortalTokenCodec({ secret: SECRET, previousSecret: OLD_SECRET });
      const token = await rotated.sign(grant);
      expect(await codec.verify(token, at('2026-11-20T10:30:00Z'))).toEqual(grant);
      expect(await refusal(new PortalTokenCodec({ secret: OLD_SECRET }), token, at('2026-11-20T10:30:00Z'))).toMatchObject({ reason: 'invalid' });
    });

    it('given an expired token signed with the previous secret, when verified, then it is refused as expired', async () => {
      const token = await new PortalTokenCodec({ secret: OLD_SECRET }).sign(grant);
      const rotated = new PortalTokenCodec({ secret: SECRET, previousSecret: OLD_SECRET });
      expect(await refusal(rotated, token, at('2026-11-20T12:00:00Z'))).toMatchObject({ reason: 'expired' });
    });
  });
});

describe('the portal:mint scope', () => {
  it('is a scope API keys may be configured with', () => {
    expect(SCOPES).toContain('portal:mint');
    const registry = ApiKeyRegistry.fromJson(JSON.stringify([{ name: 'product-backend', sha256: hashApiKey('k'), scopes: ['portal:mint'] }]));
    expect([...(registry.find('k')?.scopes ?? [])]).toEqual(['portal:mint']);
  });
});

import { expiringNoticeAt, optionsFromUrl, parseApiBase, parseColor, parseLogo, parseToken, parseUnit, tokenClaims, tokenFromMessage } from './page-options.parser';

describe('page options', () => {
  it('reads the iframe URL: the token from the fragment, the theme from the query', () => {
    const options = optionsFromUrl('https://tally.example/portal/?unit=karma&logo=https://cdn.example/logo.svg&accent=%23ff5500&theme=dark&decimals=2#token=abc.def.ghi');
    expect(options).toEqual({ token: 'abc.def.ghi', unit: 'karma', logo: 'https://cdn.example/logo.svg', accent: '#ff5500', theme: 'dark', apiBase: '', decimals: 2 });
  });

  it('falls back to defaults for what it cannot use', () => {
    const options = optionsFromUrl('https://tally.example/portal/?unit=%3Cscript%3E&logo=javascript:alert(1)&accent=red;background:url(x)&theme=neon&decimals=9');
    expect(options).toEqual({ token: undefined, unit: 'credits', logo: undefined, accent: undefined, theme: 'auto', apiBase: '', decimals: 6 });
  });

  it('takes colours, logos, units, tokens and API bases only in safe shapes', () => {
    expect(parseColor('oklch(70% 0.1 200)')).toBe('oklch(70% 0.1 200)');
    expect(parseColor('rebeccapurple')).toBe('rebeccapurple');
    expect(parseColor('url(https://x)')).toBeUndefined();
    expect(parseLogo('/brand/logo.png')).toBe('/brand/logo.png');
    expect(parseLogo('//evil.example/x.png')).toBeUndefined();
    expect(parseLogo('data:image/svg+xml;base64,AAAA')).toBeUndefined();
    expect(parseUnit(' Karma ')).toBe('Karma');
    expect(parseToken('a b')).toBeUndefined();
    expect(parseApiBase('https://api.example/tally/')).toBe('https://api.example/tally');
    expect(parseApiBase('ftp://x')).toBe('');
  });
});

describe('tokenClaims', () => {
  const jwt = (claims: unknown) => `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2lnbmF0dXJl`;

  it('reads the account and the expiry of a portal token without checking it', () => {
    expect(tokenClaims(jwt({ sub: 'acct-é/1', exp: 1_800_000_000 }))).toEqual({ accountId: 'acct-é/1', expiresAt: new Date(1_800_000_000_000) });
  });

  it('says nothing of what a token does not carry, or of a token that is not a JWT', () => {
    expect(tokenClaims(jwt({ exp: 'soon' }))).toEqual({});
    expect(tokenClaims('not-a-jwt')).toEqual({});
    expect(tokenClaims('a.%%%.b')).toEqual({});
  });

  it('takes a new token from the embedding page\'s message { type: "tally-token", token }, and nothing else', () => {
    expect(tokenFromMessage({ type: 'tally-token', token: 'eyJhbGciOiJIUzI1NiJ9.e30.sig' })).toBe('eyJhbGciOiJIUzI1NiJ9.e30.sig');
    for (const data of [undefined, null, 'tally-token', { type: 'other', token: 'eyJhbGciOiJIUzI1NiJ9.e30.sig' }, { type: 'tally-token' }, { type: 'tally-token', token: 42 }, { type: 'tally-token', token: 'has space<script>' }]) {
      expect(tokenFromMessage(data)).toBeUndefined();
    }
  });

  it('says a token expires soon two minutes before, or halfway through a shorter one, never sooner than 10 s', () => {
    const now = Date.parse('2026-12-07T12:00:00Z');
    expect(expiringNoticeAt(now + 3_600_000, now)).toBe(now + 3_600_000 - 120_000);
    expect(expiringNoticeAt(now + 60_000, now)).toBe(now + 30_000);
    expect(expiringNoticeAt(now + 240_000, now)).toBe(now + 120_000);
    // Expired already by this browser's clock (one far ahead of the ledger's): 10 s after it was set, not at once.
    expect(expiringNoticeAt(now - 1_000, now)).toBe(now + 10_000);
    expect(expiringNoticeAt(now + 12_000, now)).toBe(now + 10_000);
  });
});

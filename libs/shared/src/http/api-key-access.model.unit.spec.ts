import { allowsScope, grantedScopes, inNamespaces, LEGACY_SCOPES, outsideNamespaces, SCOPES } from './api-key-access.model';

describe('API key scopes', () => {
  it('given job scopes, when granted, then exactly those', () => {
    expect([...grantedScopes(['usage:write', 'accounts:read'])].sort()).toEqual(['accounts:read', 'usage:write']);
  });

  it('given the legacy accounts:write, when granted, then every write it used to grant and nothing more', () => {
    const granted = grantedScopes(['accounts:write']);
    expect([...granted].sort()).toEqual(['corrections:write', 'grants:write', 'holds:write', 'notifications:write', 'purchases:write', 'subscriptions:write']);
    expect(granted.has('accounts:read')).toBe(false);
    expect(granted.has('usage:write')).toBe(false);
    expect(granted.has('portal:mint')).toBe(false);
    expect(granted.has('admin')).toBe(false);
  });

  it('given a legacy scope beside new ones, when granted, then the union', () => {
    expect([...grantedScopes(['accounts:write', 'accounts:read', 'holds:write'])]).toHaveLength(7);
  });

  it('maps legacy scopes to job scopes only', () => {
    for (const mapped of Object.values(LEGACY_SCOPES)) for (const scope of mapped) expect(SCOPES).toContain(scope);
  });

  it('given a usage-only key, when it calls a route of another job, then it is refused', () => {
    const usageOnly = grantedScopes(['usage:write']);
    expect(allowsScope(usageOnly, 'usage:write')).toBe(true);
    for (const scope of ['holds:write', 'grants:write', 'purchases:write', 'corrections:write', 'accounts:read', 'portal:mint'] as const) {
      expect(allowsScope(usageOnly, scope)).toBe(false);
    }
  });

  it('given a grants:write key, when it refunds or voids (corrections:write), then it is refused', () => {
    const support = grantedScopes(['grants:write']);
    expect(allowsScope(support, 'grants:write')).toBe(true);
    expect(allowsScope(support, 'corrections:write')).toBe(false);
  });

  it('given admin, when it calls any route, then it is allowed', () => {
    for (const scope of SCOPES) expect(allowsScope(grantedScopes(['admin']), scope)).toBe(true);
  });

  it('given a route that requires no scope, when any key calls it, then it is allowed', () => {
    expect(allowsScope(grantedScopes([]), undefined)).toBe(true);
  });
});

describe('API key namespaces', () => {
  it('given no namespaces, when any account, then inside (every account)', () => {
    expect(inNamespaces(undefined, 'karma-1')).toBe(true);
    expect(outsideNamespaces(undefined, ['a', 'b'])).toEqual([]);
  });

  it('given a prefix, when an account starts with it, then inside; otherwise outside', () => {
    expect(inNamespaces(['chat-'], 'chat-42')).toBe(true);
    expect(inNamespaces(['chat-'], 'karma-42')).toBe(false);
    expect(inNamespaces(['chat-'], 'chat')).toBe(false);
  });

  it('given a prefix, when the account differs only in case or has it elsewhere, then outside', () => {
    expect(inNamespaces(['chat-'], 'CHAT-42')).toBe(false);
    expect(inNamespaces(['chat-'], 'x-chat-42')).toBe(false);
  });

  it('given two namespaces (one currency across products), when either matches, then inside', () => {
    expect(inNamespaces(['chat-', 'karma-'], 'karma-7')).toBe(true);
    expect(inNamespaces(['chat-', 'karma-'], 'chat-7')).toBe(true);
    expect(inNamespaces(['chat-', 'karma-'], 'video-7')).toBe(false);
  });

  it('given a batch, when some accounts are outside, then their indexes in order', () => {
    expect(outsideNamespaces(['chat-'], ['chat-1', 'img-1', 'chat-2', 'img-2'])).toEqual([1, 3]);
    expect(outsideNamespaces(['chat-'], ['chat-1'])).toEqual([]);
  });
});

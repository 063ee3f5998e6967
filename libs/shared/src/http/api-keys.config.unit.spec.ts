import { ContractViolation } from '@tally/contracts';
import { ApiKeyRegistry, hashApiKey } from './api-keys.config';

describe('ApiKeyRegistry', () => {
  const registry = ApiKeyRegistry.fromJson(JSON.stringify([{ name: 'chat', sha256: hashApiKey('secret-key'), scopes: ['usage:write'] }]));

  it('finds a key by its hash', () => {
    expect(registry.find('secret-key')?.name).toBe('chat');
    expect(registry.find('other')).toBeUndefined();
  });

  it('given a key, then its id finds it, and another key under the same name (a new secret) has another id', () => {
    const id = registry.find('secret-key')?.id ?? '';
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(registry.byId(id)?.name).toBe('chat');
    const rotated = ApiKeyRegistry.fromJson(JSON.stringify([{ name: 'chat', sha256: hashApiKey('new-secret-key'), scopes: ['usage:write'] }]));
    expect(rotated.find('new-secret-key')?.id).not.toBe(id);
    expect(rotated.byId(id)).toBeUndefined();
    expect(id).not.toBe(hashApiKey('secret-key').slice(0, 16));
  });

  // A key's name is the `actor` of every message its requests produce: a name the envelope refuses would have every
  // usage it reports accepted (202) and then dead-lettered by the ledger.
  it('refuses at boot a key name no message envelope can carry as its actor', () => {
    const named = (name: string) => () => ApiKeyRegistry.fromJson(JSON.stringify([{ name, sha256: hashApiKey('k'), scopes: ['usage:write'] }]));
    for (const name of ['', 'chat\tbot', 'chat\nbot', '\u007f', '\u{1F600}'.repeat(40), 'x'.repeat(65), 'lone \ud800 surrogate']) {
      expect(named(name)).toThrow(ContractViolation);
    }
    expect(named('\u{1F600}'.repeat(32))().find('k')?.name).toBe('\u{1F600}'.repeat(32));
    expect(named('chat (prod) · ünïcode')().find('k')?.name).toBe('chat (prod) · ünïcode');
  });

  it('refuses unknown scopes and plain-text keys in config', () => {
    expect(() => ApiKeyRegistry.fromJson(JSON.stringify([{ name: 'x', sha256: 'secret-key', scopes: ['root'] }]))).toThrow(ContractViolation);
    expect(() => ApiKeyRegistry.fromJson(JSON.stringify([{ name: 'x', sha256: hashApiKey('k'), scopes: ['root'] }]))).toThrow(ContractViolation);
  });

  it('given a legacy accounts:write key, when found, then it grants the mapped write scopes and is listed as deprecated', () => {
    const legacy = ApiKeyRegistry.fromJson(
      JSON.stringify([
        { name: 'old-backend', sha256: hashApiKey('old'), scopes: ['accounts:write', 'accounts:read'] },
        { name: 'new-backend', sha256: hashApiKey('new'), scopes: ['holds:write'] },
      ]),
    );
    const key = legacy.find('old');
    expect(key?.scopes.has('grants:write')).toBe(true);
    expect(key?.scopes.has('accounts:read')).toBe(true);
    expect(legacy.withLegacyScopes().map(({ name, legacyScopes }) => [name, legacyScopes])).toEqual([['old-backend', ['accounts:write']]]);
  });

  it('given namespaces, when parsed, then kept; absent, then every account', () => {
    const keys = ApiKeyRegistry.fromJson(
      JSON.stringify([
        { name: 'chat', sha256: hashApiKey('a'), scopes: ['usage:write'], namespaces: ['chat-', 'shared-'] },
        { name: 'ops', sha256: hashApiKey('b'), scopes: ['admin'] },
      ]),
    );
    expect(keys.find('a')?.namespaces).toEqual(['chat-', 'shared-']);
    expect(keys.find('b')?.namespaces).toBeUndefined();
  });

  it('given a namespace without a trailing delimiter, then it is listed for a boot warning (chat also covers chatbot-1)', () => {
    const registry = ApiKeyRegistry.fromJson(
      JSON.stringify([
        { name: 'chat', sha256: hashApiKey('k1'), scopes: ['accounts:read'], namespaces: ['chat', 'shared-'] },
        { name: 'karma', sha256: hashApiKey('k2'), scopes: ['accounts:read'], namespaces: ['karma_'] },
      ]),
    );
    expect(registry.openEndedNamespaces()).toEqual([{ key: 'chat', namespace: 'chat' }]);
  });

  it('refuses an empty namespace list or an empty prefix (either would silently mean something else)', () => {
    const entry = (namespaces: unknown) => JSON.stringify([{ name: 'x', sha256: hashApiKey('k'), scopes: ['usage:write'], namespaces }]);
    expect(() => ApiKeyRegistry.fromJson(entry([]))).toThrow(ContractViolation);
    expect(() => ApiKeyRegistry.fromJson(entry(['']))).toThrow(ContractViolation);
    expect(() => ApiKeyRegistry.fromJson(entry('chat-'))).toThrow(ContractViolation);
  });
});

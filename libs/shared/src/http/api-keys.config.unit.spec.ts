import { ContractViolation } from '@tally/contracts';
import { ApiKeyRegistry, hashApiKey } from './api-keys.config';

describe('ApiKeyRegistry', () => {
  const registry = ApiKeyRegistry.fromJson(JSON.stringify([{ name: 'chat', sha256: hashApiKey('secret-key'), scopes: ['usage:write'] }]));

  it('finds a key by its hash', () => {
    expect(registry.find('secret-key')?.name).toBe('chat');
    expect(registry.find('other')).toBeUndefined();
  });

  it('refuses unknown scopes and plain-text keys in config', () => {
    expect(() => ApiKeyRegistry.fromJson(JSON.stringify([{ name: 'x', sha256: 'secret-key', scopes: ['root'] }]))).toThrow(ContractViolation);
  });
});

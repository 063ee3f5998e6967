import { randomBytes } from 'node:crypto';
import { WebhookSecretBox, parseWebhookSecretKeys } from './webhook-secret.codec';

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const keyOf = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;

describe('webhook secrets at rest (AES-256-GCM, bound to the account)', () => {
  const [k1, k2] = [keyOf('k1'), keyOf('k2')];

  it('given a key, when a secret is sealed, then the stored text names the key, does not contain the secret, and opens to it', () => {
    const box = new WebhookSecretBox(parseWebhookSecretKeys(k1));
    const stored = box.seal(SECRET, 'acct-1');
    expect(stored).toMatch(/^enc:v1:k1:/);
    expect(stored).not.toContain(SECRET.slice(6, 20));
    expect(box.open(stored, 'acct-1')).toBe(SECRET);
    // A fresh nonce each time: the same secret never seals to the same text.
    expect(box.seal(SECRET, 'acct-1')).not.toBe(stored);
  });

  it('given a sealed secret, when it is read for another account or altered, then it is refused', () => {
    const box = new WebhookSecretBox(parseWebhookSecretKeys(k1));
    const stored = box.seal(SECRET, 'acct-1');
    expect(() => box.open(stored, 'acct-2')).toThrow(/cannot be decrypted/);
    const parts = stored.split(':');
    const body = Buffer.from(parts[5], 'base64url');
    body[0] ^= 1;
    expect(() => box.open([...parts.slice(0, 5), body.toString('base64url')].join(':'), 'acct-1')).toThrow(/cannot be decrypted/);
    // A tag cut short (GCM would accept 4 bytes unless told otherwise) or a nonce of another length: refused.
    const shortTag = Buffer.from(parts[4], 'base64url').subarray(0, 4).toString('base64url');
    expect(() => box.open([...parts.slice(0, 4), shortTag, parts[5]].join(':'), 'acct-1')).toThrow(/cannot be decrypted/);
    const longNonce = Buffer.concat([Buffer.from(parts[3], 'base64url'), Buffer.alloc(4)]).toString('base64url');
    expect(() => box.open([...parts.slice(0, 3), longNonce, ...parts.slice(4)].join(':'), 'acct-1')).toThrow(/cannot be decrypted/);
  });

  it('given a rotation (new key first, old key kept), when an old secret is read, then it opens and is due for resealing with the new key', () => {
    const old = new WebhookSecretBox(parseWebhookSecretKeys(k1));
    const stored = old.seal(SECRET, 'acct-1');
    const rotated = new WebhookSecretBox(parseWebhookSecretKeys(`${k2},${k1}`));
    expect(rotated.open(stored, 'acct-1')).toBe(SECRET);
    expect(rotated.needsReseal(stored)).toBe(true);
    const resealed = rotated.seal(rotated.open(stored, 'acct-1'), 'acct-1');
    expect(resealed).toMatch(/^enc:v1:k2:/);
    expect(rotated.needsReseal(resealed)).toBe(false);
  });

  it('given a secret stored in plain text before encryption, when it is read, then it is used as is and is due for sealing', () => {
    const box = new WebhookSecretBox(parseWebhookSecretKeys(k1));
    expect(box.open(SECRET, 'acct-1')).toBe(SECRET);
    expect(box.needsReseal(SECRET)).toBe(true);
  });

  it('given the key a secret was sealed with is no longer configured, when it is read, then the error names the key id', () => {
    const stored = new WebhookSecretBox(parseWebhookSecretKeys(k1)).seal(SECRET, 'acct-1');
    const without = new WebhookSecretBox(parseWebhookSecretKeys(k2));
    expect(without.keyIdOf(stored)).toBe('k1');
    expect(without.knows('k1')).toBe(false);
    expect(() => without.open(stored, 'acct-1')).toThrow(/key k1 is not configured/);
  });

  it('refuses key lists that are not id:base64-of-32-bytes pairs, or name a key twice', () => {
    expect(() => parseWebhookSecretKeys('k1')).toThrow(/id:base64/);
    expect(() => parseWebhookSecretKeys(`k1:${Buffer.alloc(16).toString('base64')}`)).toThrow(/32 bytes/);
    expect(() => parseWebhookSecretKeys(`${k1},${k1.replace(/:.*/, '')}:${randomBytes(32).toString('base64')}`)).toThrow(/twice/);
    expect(() => parseWebhookSecretKeys('bad id!:xx')).toThrow(/id:base64/);
  });
});

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** One configured key: an id (stored next to every secret it sealed) and 32 bytes for AES-256. */
export interface WebhookSecretKey {
  id: string;
  key: Buffer;
}

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const PREFIX = 'enc:v1:';

/**
 * WEBHOOK_SECRET_KEYS: `id:base64,id:base64,…`, each key 32 random bytes (`openssl rand -base64 32`). The first
 * seals new secrets; every one of them opens what it sealed (rotation: put the new key first, keep the old ones until
 * the service has resealed every stored secret at boot, then remove them). Throws naming what is wrong.
 */
export function parseWebhookSecretKeys(value: string): WebhookSecretKey[] {
  const keys = value.split(',').map((pair) => pair.trim()).filter(Boolean).map((pair) => {
    const at = pair.indexOf(':');
    const id = pair.slice(0, at);
    if (at < 1 || !KEY_ID.test(id)) throw new Error('each key must be id:base64 (id: 1-32 letters, digits, _ or -)');
    const key = Buffer.from(pair.slice(at + 1), 'base64');
    if (key.length !== 32) throw new Error(`key ${id} must be 32 bytes, base64-encoded (openssl rand -base64 32)`);
    return { id, key };
  });
  if (keys.length === 0) throw new Error('at least one key is required (id:base64)');
  const ids = new Set<string>();
  for (const { id } of keys) {
    if (ids.has(id)) throw new Error(`key ${id} is named twice`);
    ids.add(id);
  }
  return keys;
}

/**
 * Webhook signing secrets at rest: AES-256-GCM with a random 96-bit nonce, the account id as additional data (a
 * sealed secret copied onto another account's row does not open), stored as `enc:v1:<keyId>:<nonce>:<tag>:<ciphertext>`
 * (base64url). A value without the prefix is a secret stored in plain text before encryption existed: read as is,
 * and resealed at boot (WebhookSecretResealer).
 */
export class WebhookSecretBox {
  private readonly byId: Map<string, Buffer>;

  constructor(private readonly keys: readonly WebhookSecretKey[]) {
    if (keys.length === 0) throw new Error('WebhookSecretBox needs at least one key');
    this.byId = new Map(keys.map(({ id, key }) => [id, key]));
  }

  seal(secret: string, accountId: string): string {
    const { id, key } = this.keys[0];
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(Buffer.from(accountId, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return `${PREFIX}${id}:${nonce.toString('base64url')}:${cipher.getAuthTag().toString('base64url')}:${ciphertext.toString('base64url')}`;
  }

  open(stored: string, accountId: string): string {
    if (!stored.startsWith(PREFIX)) return stored;
    const [id, nonce, tag, ciphertext] = stored.slice(PREFIX.length).split(':');
    const key = this.byId.get(id);
    if (!key) throw new Error(`the webhook secret of account ${accountId} was sealed with key ${id}, and key ${id} is not configured (WEBHOOK_SECRET_KEYS)`);
    try {
      // The lengths seal() writes, and no other: a shortened tag would weaken the authentication.
      const [nonceBytes, tagBytes] = [Buffer.from(nonce ?? '', 'base64url'), Buffer.from(tag ?? '', 'base64url')];
      if (nonceBytes.length !== 12 || tagBytes.length !== 16) throw new Error('bad lengths');
      const decipher = createDecipheriv('aes-256-gcm', key, nonceBytes, { authTagLength: 16 }).setAAD(Buffer.from(accountId, 'utf8'));
      decipher.setAuthTag(tagBytes);
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new Error(`the webhook secret of account ${accountId} cannot be decrypted with key ${id} (altered, or not this account's)`);
    }
  }

  /** The key id a stored value was sealed with; undefined for plain text. */
  keyIdOf(stored: string): string | undefined {
    return stored.startsWith(PREFIX) ? stored.slice(PREFIX.length).split(':')[0] : undefined;
  }

  knows(keyId: string): boolean {
    return this.byId.has(keyId);
  }

  /** Plain text, or sealed with a key other than the current one. */
  needsReseal(stored: string): boolean {
    return this.keyIdOf(stored) !== this.keys[0].id;
  }
}

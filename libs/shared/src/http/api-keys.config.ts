import { createHash, timingSafeEqual } from 'node:crypto';
import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsOptional, IsString, Matches, MaxLength, MinLength, ValidateNested } from 'class-validator';
import { ACTOR_PATTERN, ContractViolation, validateInto } from '@tally/contracts';
import { grantedScopes, isLegacyScope, LEGACY_SCOPES, SCOPES, type LegacyScope, type Scope } from './api-key-access.model';

// The pure rules (scopes, legacy mapping, namespaces) are part of this module's public face (libs/shared's index).
export * from './api-key-access.model';

const ACCEPTED_SCOPES = [...SCOPES, ...Object.keys(LEGACY_SCOPES)];

/** One entry of API_KEYS as configured. */
export class ApiKeyEntry {
  /** The `actor` of every message its requests produce, so it must be one the envelope carries (ACTOR_PATTERN). */
  @IsString() @Matches(ACTOR_PATTERN, { message: 'name must be 1-64 characters (UTF-16 code units), none a control character' }) name!: string;
  @Matches(/^[0-9a-f]{64}$/, { message: 'sha256 must be the hex SHA-256 of the key' }) sha256!: string;
  @IsArray() @ArrayMaxSize(ACCEPTED_SCOPES.length) @IsIn(ACCEPTED_SCOPES, { each: true }) scopes!: (Scope | LegacyScope)[];
  /** Account-id prefixes the key is limited to (e.g. `["chat-"]`); absent = every account. */
  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayMaxSize(100) @IsString({ each: true }) @MinLength(1, { each: true }) @MaxLength(128, { each: true })
  namespaces?: string[];
}

/** A configured key as the guard uses it: the scopes it grants (legacy ones mapped) and its namespaces. */
export interface ApiKey {
  readonly name: string;
  /**
   * The key's id: derived from its configured hash, so another key under the same name has another id; not the hash
   * itself. Portal tokens carry their minting key's id, and are refused once no configured key has it (apiKeyIdOf).
   */
  readonly id: string;
  readonly scopes: ReadonlySet<Scope>;
  /** Account-id prefixes; undefined = every account. */
  readonly namespaces?: readonly string[];
  /** The deprecated scopes it was configured with (warned about at boot). */
  readonly legacyScopes: readonly LegacyScope[];
}

class ApiKeyList {
  @IsArray() @ValidateNested({ each: true }) @Type(() => ApiKeyEntry) keys!: ApiKeyEntry[];
}

export const hashApiKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

/** An API key's id (ApiKey.id) from its configured SHA-256: 16 hex digits that tell keys apart and reveal nothing of them. */
export const apiKeyIdOf = (sha256Hex: string): string => createHash('sha256').update(`tally-api-key-id:${sha256Hex.toLowerCase()}`, 'utf8').digest('hex').slice(0, 16);
export const API_KEY_ID_PATTERN = /^[0-9a-f]{16}$/;

/** Service API keys, configured as hashes with scopes; lookups compare hashes in constant time. */
export class ApiKeyRegistry {
  private readonly keys: readonly (ApiKey & { readonly sha256: Buffer })[];

  private constructor(entries: ApiKeyEntry[]) {
    this.keys = entries.map((entry) => ({
      name: entry.name,
      id: apiKeyIdOf(entry.sha256),
      sha256: Buffer.from(entry.sha256, 'hex'),
      scopes: grantedScopes(entry.scopes),
      ...(entry.namespaces === undefined ? {} : { namespaces: [...entry.namespaces] }),
      legacyScopes: entry.scopes.filter(isLegacyScope),
    }));
  }

  /** Parses the API_KEYS JSON; throws ContractViolation naming the bad entry. */
  static fromJson(json: string): ApiKeyRegistry {
    let keys: unknown;
    try {
      keys = JSON.parse(json);
    } catch {
      throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'API_KEYS', reason: 'must be a JSON array' }]);
    }
    // validateInto refuses unstorable text (a lone surrogate, NUL) in any field, the names included.
    return new ApiKeyRegistry(validateInto(ApiKeyList, { keys }, 'INVALID_PAYLOAD', 'API_KEYS').keys);
  }

  find(presentedKey: string): ApiKey | undefined {
    const presented = Buffer.from(hashApiKey(presentedKey), 'hex');
    return this.keys.find((key) => timingSafeEqual(key.sha256, presented));
  }

  /** The configured key with this id (ApiKey.id), if any. */
  byId(id: string): ApiKey | undefined {
    return this.keys.find((key) => key.id === id);
  }

  /**
   * Namespaces that end in a letter or digit, by key name: `chat` also covers `chatbot-…`, another product's accounts
   * perhaps (warned about at boot; README "API": end a prefix with a delimiter such as `chat-`).
   */
  openEndedNamespaces(): { key: string; namespace: string }[] {
    return this.keys.flatMap((key) => (key.namespaces ?? []).filter((namespace) => /[A-Za-z0-9]$/.test(namespace)).map((namespace) => ({ key: key.name, namespace })));
  }

  /** The keys configured with a deprecated scope (README "API": the legacy mapping and its end). */
  withLegacyScopes(): ApiKey[] {
    return this.keys.filter((key) => key.legacyScopes.length > 0);
  }
}

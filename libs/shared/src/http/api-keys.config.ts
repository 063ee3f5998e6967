import { createHash, timingSafeEqual } from 'node:crypto';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsIn, IsString, Matches, MaxLength, ValidateNested } from 'class-validator';
import { ContractViolation, validateInto } from '@tally/contracts';

export const SCOPES = ['usage:write', 'accounts:read', 'accounts:write', 'portal:mint', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export class ApiKeyEntry {
  @IsString() @MaxLength(64) name!: string;
  @Matches(/^[0-9a-f]{64}$/, { message: 'sha256 must be the hex SHA-256 of the key' }) sha256!: string;
  @IsArray() @ArrayMaxSize(SCOPES.length) @IsIn(SCOPES, { each: true }) scopes!: Scope[];
}

class ApiKeyList {
  @IsArray() @ValidateNested({ each: true }) @Type(() => ApiKeyEntry) keys!: ApiKeyEntry[];
}

export const hashApiKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

/** Service API keys, configured as hashes with scopes; lookups compare hashes in constant time. */
export class ApiKeyRegistry {
  private constructor(private readonly entries: ApiKeyEntry[]) {}

  /** Parses the API_KEYS JSON; throws ContractViolation naming the bad entry. */
  static fromJson(json: string): ApiKeyRegistry {
    let keys: unknown;
    try {
      keys = JSON.parse(json);
    } catch {
      throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'API_KEYS', reason: 'must be a JSON array' }]);
    }
    return new ApiKeyRegistry(validateInto(ApiKeyList, { keys }, 'INVALID_PAYLOAD', 'API_KEYS').keys);
  }

  find(presentedKey: string): ApiKeyEntry | undefined {
    const presented = Buffer.from(hashApiKey(presentedKey), 'hex');
    return this.entries.find((entry) => timingSafeEqual(Buffer.from(entry.sha256, 'hex'), presented));
  }
}

import { IsNumber, Max, Min, ValidateBy, type ValidationOptions } from 'class-validator';
import { ContractViolation, validateInto } from '@tally/contracts';
import type { RateLimit } from './rate-limit.model';

/** One entry of RATE_LIMITS: `{"perSecond": 50, "burst": 100}`. */
export class RateLimitEntry implements RateLimit {
  @IsNumber({ allowNaN: false, allowInfinity: false }) @Min(0.01) @Max(1_000_000) perSecond!: number;
  @IsNumber({ allowNaN: false, allowInfinity: false }) @Min(1) @Max(1_000_000) burst!: number;
}

/**
 * RATE_LIMITS: per-caller overrides of the default limit, by API key name (`{"chat-backend": {"perSecond": 500,
 * "burst": 1000}}`) or, for portal tokens, `portal:<accountId>`. Throws ContractViolation naming the bad entry.
 */
export function parseRateLimits(json: string): ReadonlyMap<string, RateLimit> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'RATE_LIMITS', reason: 'must be a JSON object' }]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'RATE_LIMITS', reason: 'must be a JSON object of key name → {perSecond, burst}' }]);
  }
  return new Map(
    Object.entries(parsed).map(([name, entry]) => {
      const limit = validateInto(RateLimitEntry, entry, 'INVALID_PAYLOAD', `RATE_LIMITS.${name}`);
      return [name, { perSecond: limit.perSecond, burst: limit.burst }];
    }),
  );
}

/** Config validation: the value parses as RATE_LIMITS. */
export function IsRateLimitsJson(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isRateLimitsJson',
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'string') return false;
          try {
            parseRateLimits(value);
            return true;
          } catch {
            return false;
          }
        },
        defaultMessage: (args) => {
          try {
            parseRateLimits(String(args?.value));
          } catch (error) {
            if (error instanceof ContractViolation) return `RATE_LIMITS: ${error.issues.map((issue) => `${issue.field} ${issue.reason}`).join('; ')}`;
          }
          return 'RATE_LIMITS must be a JSON object of API key name → {"perSecond": n > 0, "burst": n ≥ 1}';
        },
      },
    },
    options,
  );
}

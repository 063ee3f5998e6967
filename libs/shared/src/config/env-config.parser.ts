import 'reflect-metadata';
import { plainToInstance, type ClassConstructor } from 'class-transformer';
import { ValidateBy, validateSync } from 'class-validator';
import { flattenValidationErrors } from '@tally/contracts';

const SENSITIVE = Symbol('tally:sensitive');

/** Marks a config property as secret: it is redacted wherever the config is logged. */
export function Sensitive(): PropertyDecorator {
  return (target, property) => {
    const list: (string | symbol)[] = Reflect.getMetadata(SENSITIVE, target) ?? [];
    Reflect.defineMetadata(SENSITIVE, [...list, property], target);
  };
}

/**
 * A rule across variables, reported on the one it decorates: refused (with `message`) unless `holds(config)` is true.
 * E.g. a CA file only with TLS on.
 */
export function Holds<T>(holds: (config: T) => boolean, message: string): PropertyDecorator {
  return ValidateBy({ name: 'holds', validator: { validate: (_value, args) => holds(args?.object as T), defaultMessage: () => message } });
}

export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; reason: string }[]) {
    super(`invalid configuration: ${problems.map((p) => `${p.variable}: ${p.reason}`).join('; ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Builds the app's one config class from environment variables (property name = variable name) and validates
 * it. Throws ConfigError naming every bad variable, so the app refuses to boot.
 * This is the only place in a service that reads process.env.
 */
export function loadConfig<T extends object>(cls: ClassConstructor<T>, env: NodeJS.ProcessEnv = process.env): T {
  const config = plainToInstance(cls, coerceToDefaults(cls, env), { enableImplicitConversion: true, exposeDefaultValues: true });
  const errors = validateSync(config, { whitelist: true, forbidUnknownValues: true });
  if (errors.length > 0) {
    const reasons = new Map<string, string[]>();
    for (const issue of flattenValidationErrors(errors)) reasons.set(issue.field, [...(reasons.get(issue.field) ?? []), issue.reason]);
    throw new ConfigError([...reasons].map(([variable, list]) => ({ variable, reason: list.join(', ') })));
  }
  return config;
}

/**
 * Environment values are strings. A property declared with a number or boolean default (`MAX_BATCH = 1000`)
 * carries no reflected type (SWC emits none without an annotation), so convert by the default's type; a value
 * that does not convert is left as it is, for validation to name.
 */
function coerceToDefaults<T extends object>(cls: ClassConstructor<T>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const defaults = new cls() as Record<string, unknown>;
  return Object.fromEntries(
    Object.entries(env).map(([key, value]) => {
      if (typeof value !== 'string') return [key, value];
      if (typeof defaults[key] === 'number' && /^-?\d+(\.\d+)?$/.test(value.trim())) return [key, Number(value)];
      if (typeof defaults[key] === 'boolean' && (value === 'true' || value === 'false')) return [key, value === 'true'];
      return [key, value];
    }),
  );
}

/** A copy of the config fit for logs: values of @Sensitive() properties replaced by "[redacted]". */
export function redactConfig<T extends object>(config: T): Record<string, unknown> {
  const sensitive: (string | symbol)[] = Reflect.getMetadata(SENSITIVE, Object.getPrototypeOf(config)) ?? [];
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => [key, sensitive.includes(key) ? '[redacted]' : value]),
  );
}

/** "a:1,b:2" → ["a:1", "b:2"], for list-valued variables. */
export const splitList = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value;

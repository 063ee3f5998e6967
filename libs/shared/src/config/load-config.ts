import 'reflect-metadata';
import { plainToInstance, type ClassConstructor } from 'class-transformer';
import { validateSync } from 'class-validator';
import { flattenValidationErrors } from '@tally/contracts';

const SENSITIVE = Symbol('tally:sensitive');

/** Marks a config property as secret: it is redacted wherever the config is logged. */
export function Sensitive(): PropertyDecorator {
  return (target, property) => {
    const list: (string | symbol)[] = Reflect.getMetadata(SENSITIVE, target) ?? [];
    Reflect.defineMetadata(SENSITIVE, [...list, property], target);
  };
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
  const config = plainToInstance(cls, { ...env }, { enableImplicitConversion: true, exposeDefaultValues: true });
  const errors = validateSync(config, { whitelist: true, forbidUnknownValues: true });
  if (errors.length > 0) {
    const reasons = new Map<string, string[]>();
    for (const issue of flattenValidationErrors(errors)) reasons.set(issue.field, [...(reasons.get(issue.field) ?? []), issue.reason]);
    throw new ConfigError([...reasons].map(([variable, list]) => ({ variable, reason: list.join(', ') })));
  }
  return config;
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

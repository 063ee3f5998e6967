import { ValidateIf, registerDecorator, type ValidationOptions } from 'class-validator';
import { INSTANT_RULE, isInstant } from '@tally/instant';
import type { FieldIssue } from './contract.errors';
import { canonicalIso8601 } from './iso8601-fast-path.parser';

/** How deep any request body or message may nest: Tally's own contracts need 4; class-transformer recurses. */
export const MAX_JSON_DEPTH = 32;

/**
 * PostgreSQL text and jsonb refuse NUL; jsonb and UTF-8 refuse a UTF-16 surrogate without its pair. Two native scans
 * (`includes`, ES2024's `isWellFormed`), not a regular expression with lookarounds tried at every position: every
 * string and key of every message goes through here (the unit test holds it to that expression).
 */
export function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * At most `max` UTF-16 units of `text`, one fewer when the cut would split a surrogate pair: what a store keeps of a
 * longer text (an error's message, a label) stays storable (isStorableText), where `slice` alone could leave half
 * an emoji that jsonb refuses.
 */
export function truncateText(text: string, max: number): string {
  const cut = text.slice(0, max);
  const last = cut.charCodeAt(cut.length - 1);
  return cut.length === max && last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

/**
 * Property names every JavaScript object inherits (constructor, __proto__, toString, hasOwnProperty, ...). No contract
 * has one, and class-transformer would drop such a property silently or, for `constructor`, fail with a TypeError.
 */
const RESERVED_NAMES: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

/**
 * The first place in a parsed JSON value that no store can hold and no contract needs: a string (value or
 * property name) with a NUL or an unpaired surrogate, a property name JavaScript reserves, or nesting deeper than
 * `maxDepth`. The issue names the field by its path and never quotes the offending text.
 * Every edge runs it on every message, so the common answer (safe) comes from `isSafeJson`, which builds no paths.
 */
export function findUnsafeJson(value: unknown, prefix = '', maxDepth = MAX_JSON_DEPTH): FieldIssue | undefined {
  return isSafeJson(value, maxDepth) ? undefined : locateUnsafeJson(value, prefix, maxDepth);
}

/** Whether `findUnsafeJson` finds nothing. Recursion stops at `maxDepth`, so a hostile depth cannot overflow the stack. */
export function isSafeJson(value: unknown, maxDepth = MAX_JSON_DEPTH, depth = 0): boolean {
  if (typeof value === 'string') return isStorableText(value);
  if (typeof value !== 'object' || value === null) return true;
  if (depth >= maxDepth) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!isSafeJson(item, maxDepth, depth + 1)) return false;
    return true;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue; // own enumerable keys, as Object.keys, without its array
    if (!isStorableText(key) || RESERVED_NAMES.has(key)) return false;
    if (!isSafeJson((value as Record<string, unknown>)[key], maxDepth, depth + 1)) return false;
  }
  return true;
}

/** `findUnsafeJson` the long way, naming the field: iterative, so a hostile depth cannot overflow the stack. */
export function locateUnsafeJson(value: unknown, prefix = '', maxDepth = MAX_JSON_DEPTH): FieldIssue | undefined {
  const stack: [unknown, string, number][] = [[value, prefix, 0]];
  while (stack.length > 0) {
    const [node, path, depth] = stack.pop() as [unknown, string, number];
    const field = path || '(root)';
    if (typeof node === 'string') {
      if (!isStorableText(node)) return { field, reason: 'must not contain a NUL character or an unpaired UTF-16 surrogate' };
      continue;
    }
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= maxDepth) return { field, reason: `nests deeper than ${maxDepth} levels` };
    const entries: [string, unknown][] = Array.isArray(node) ? node.map((v, i) => [String(i), v]) : Object.entries(node);
    for (const [key, child] of entries) {
      if (!isStorableText(key)) return { field, reason: 'has a property name with a NUL character or an unpaired UTF-16 surrogate' };
      if (RESERVED_NAMES.has(key)) return { field, reason: 'has a property name JavaScript reserves (constructor, __proto__, toString, ...)' };
      stack.push([child, path ? `${path}.${key}` : key, depth + 1]);
    }
  }
  return undefined;
}

/**
 * Like `@IsOptional()`, except that only absence skips the field's rules: an explicit `null` is checked (and
 * refused) like any other value. Use it wherever null has no meaning of its own.
 */
export function IsOptionalNotNull(options?: ValidationOptions) {
  return ValidateIf((_object: object, value: unknown) => value !== undefined, options);
}

/** The longest canonical timestamp (`2026-11-21T10:00:00.123456789Z`): past it the fraction has more digits than an instant takes. */
const LONGEST_CANONICAL = 30;

/**
 * An instant (libs/instant: a date, a time of day and an explicit offset, which JavaScript and PostgreSQL read alike),
 * not any ISO 8601 string as `@IsISO8601` takes. Tally's own timestamps (`toISOString`'s shape) are answered by the
 * character scan every message's timestamps go through (canonicalIso8601), anything else by the instant's rule.
 */
export function IsInstant(options?: ValidationOptions) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isInstant',
      target: target.constructor,
      propertyName,
      options: { message: `${propertyName} ${INSTANT_RULE}`, ...options },
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' && ((value.length <= LONGEST_CANONICAL && canonicalIso8601(value, { strict: true }) === true) || isInstant(value)),
      },
    });
}

export interface StringRecordLimits {
  maxEntries: number;
  maxKeyLength: number;
  maxValueLength: number;
}

/** A flat JSON object of strings with bounded size (e.g. usage metadata), so one event stays a small message. */
export function IsBoundedStringRecord(limits: StringRecordLimits, options?: ValidationOptions) {
  const { maxEntries, maxKeyLength, maxValueLength } = limits;
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isBoundedStringRecord',
      target: target.constructor,
      propertyName,
      options: {
        message: `${propertyName} must be an object of at most ${maxEntries} string values (keys 1-${maxKeyLength} characters, values at most ${maxValueLength})`,
        ...options,
      },
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
          const entries = Object.entries(value);
          return (
            entries.length <= maxEntries &&
            entries.every(([k, v]) => k.length >= 1 && k.length <= maxKeyLength && typeof v === 'string' && v.length <= maxValueLength)
          );
        },
      },
    });
}

import { IS_ISO8601, MATCHES, MAX_LENGTH, ValidationTypes, getMetadataStorage, type ValidationArguments } from 'class-validator';
import { generateFunction } from './generated-function.parser';
import { canonicalIso8601 } from './iso8601-fast-path.parser';

/** A class, as class-validator's metadata names it. */
type Class = abstract new (...args: never[]) => object;

/**
 * A validator compiled once per class from class-validator's own metadata, answering only "does this instance
 * pass?". It runs the very constraint functions the decorators registered, with the rules of class-validator's
 * `validateSync` for the options Tally uses everywhere (`whitelist`, `forbidNonWhitelisted`, `forbidUnknownValues`;
 * no groups; async constraints skipped). What it saves is class-validator's per-call work: looking the class's
 * metadata up again (a scan of every decorated class, for inheritance), grouping it, and building a ValidationError
 * tree for a message that passes. A refusal is explained by `validateSync` itself (see validateInto), so messages
 * are unchanged; `compiled-validator.parser.unit.spec.ts` holds both to the same answer on generated messages.
 */
export type InstanceCheck = (instance: object) => boolean;

interface ConstraintCheck {
  validate: (value: unknown, args: ValidationArguments) => unknown;
  each: boolean;
  /**
   * The arguments handed to `validate`, one object per constraint, its `object` and `value` set before each call
   * (the hot paths validate thousands of messages a second: a new object per constraint per property was the
   * largest allocation of the ledger's commands process). Constraints read their arguments during the call only.
   */
  args: ValidationArguments;
}

interface PropertyCheck {
  name: string;
  conditions: ((object: object, value: unknown) => boolean)[];
  constraints: ConstraintCheck[];
  /** `@ValidateNested`: the schema class-validator hands down (the declaring class's name), or undefined. */
  nestedSchema: string | undefined;
}

interface ClassCheck {
  /** Every property that has any metadata (the whitelist). */
  known: Set<string>;
  /** The class's whole check, generated from its properties' (see generateCheck). */
  passes: InstanceCheck;
}

const storage = getMetadataStorage();
const compiled = new Map<Class, Map<string | undefined, ClassCheck>>();

function compile(target: Class, schema: string | undefined): ClassCheck {
  const metadatas = storage.getTargetValidationMetadatas(target, schema as string, false, false, undefined);
  const grouped = storage.groupByPropertyName(metadatas);
  const properties: PropertyCheck[] = Object.entries(grouped).map(([name, list]) => {
    const constraints: ConstraintCheck[] = [];
    // IS_DEFINED constraints run first, then the custom ones (class-validator's order; the answer does not depend on it).
    for (const type of [ValidationTypes.IS_DEFINED, ValidationTypes.CUSTOM_VALIDATION]) {
      for (const metadata of list.filter((m) => m.type === type)) {
        for (const constraint of storage.getTargetValidatorConstraints(metadata.constraintCls)) {
          if (constraint.async) continue; // validateSync skips async constraints
          const instance = constraint.instance as { validate: ConstraintCheck['validate'] };
          const validate = instance.validate.bind(instance);
          constraints.push({
            validate: withFastPath(constraint.name, validate, metadata.constraints),
            each: metadata.each === true,
            args: { targetName: target.name, property: metadata.propertyName, object: {}, value: undefined, constraints: metadata.constraints },
          });
        }
      }
    }
    return {
      name,
      conditions: list.filter((m) => m.type === ValidationTypes.CONDITIONAL_VALIDATION).map((m) => m.constraints[0] as PropertyCheck['conditions'][number]),
      constraints,
      nestedSchema: nestedSchemaOf(list.find((m) => m.type === ValidationTypes.NESTED_VALIDATION || m.type === ValidationTypes.PROMISE_VALIDATION)),
    };
  });
  const known = new Set(Object.keys(grouped));
  return { known, passes: generateCheck(known, properties) };
}

/**
 * The check of one class as one function generated from its properties' checks: each property read by its own name
 * (`o["available"]`, a load V8 specialises to the class's shape) and each constraint called from a call site of its
 * own. The loop it replaces read every property of every class through one keyed load and called every constraint
 * through one call site, both megamorphic (a UsageDebited envelope's checks: ~7 µs that way, ~4.5 generated; docs/
 * benchmarks.md, issue 17, session 26). Same order, same answers (the whitelist first; a property's conditions, its
 * constraints, then its nested values). What goes into the source is JSON-quoted: property and schema names;
 * everything else is passed in (generateFunction).
 */
function generateCheck(known: ReadonlySet<string>, properties: readonly PropertyCheck[]): InstanceCheck {
  if (properties.length === 0) return () => false; // forbidUnknownValues
  return generateFunction<InstanceCheck>((name) => checkSource(known, properties, name));
}

function checkSource(known: ReadonlySet<string>, properties: readonly PropertyCheck[], name: (value: unknown) => string): string {
  const lines = [`for (const key in o) if (Object.hasOwn(o, key) && !${name(known)}.has(key)) return false;`, 'let v, r;'];
  for (const property of properties) {
    lines.push(`v = o[${JSON.stringify(property.name)}];`);
    const checks: string[] = [];
    for (const constraint of property.constraints) {
      if (constraint.each) {
        checks.push(`if (!${name(passesConstraint)}(${name(constraint)}, o, v)) return false;`);
        continue;
      }
      const args = name(constraint.args);
      checks.push(`${args}.object = o; ${args}.value = v;`);
      checks.push(`if ((r = ${name(constraint.validate)}(v, ${args})) !== true && !${name(passesResult)}(r)) return false;`);
    }
    if (property.nestedSchema !== undefined) checks.push(`if (!${name(passesNested)}(v, ${JSON.stringify(property.nestedSchema)})) return false;`);
    const conditions = property.conditions.map((condition) => `${name(condition)}(o, v)`);
    lines.push(conditions.length > 0 ? `if (${conditions.join(' && ')}) {\n${checks.join('\n')}\n}` : checks.join('\n'));
  }
  lines.push('return true;');
  return `return function check(o) {\n${lines.join('\n')}\n};`;
}

/** The constraint's function, behind the answer this file gives itself for the common case where it has one. */
function withFastPath(name: string, validate: ConstraintCheck['validate'], constraints: unknown[]): ConstraintCheck['validate'] {
  if (name === IS_ISO8601) return withIso8601FastPath(validate);
  if (name === MAX_LENGTH) return withMaxLengthFastPath(validate, constraints);
  if (name === MATCHES) return withMatchesFastPath(validate, constraints);
  return validate;
}

/**
 * `@Matches(pattern)`: validator answers `!!value.match(pattern)`; for a pattern without the g or y flag (whose test
 * ignores and keeps lastIndex) and no modifiers that is `pattern.test(value)`, without the match array.
 */
function withMatchesFastPath(validate: ConstraintCheck['validate'], [pattern, modifiers]: unknown[]): ConstraintCheck['validate'] {
  if (!(pattern instanceof RegExp) || pattern.global || pattern.sticky || modifiers !== undefined) return validate;
  return (value) => typeof value === 'string' && pattern.test(value);
}

/** `@IsISO8601(options)`: a canonical timestamp is answered here (see canonicalIso8601), anything else by validator. */
function withIso8601FastPath(validate: ConstraintCheck['validate']): ConstraintCheck['validate'] {
  return (value, args) => {
    if (typeof value === 'string') {
      const answer = canonicalIso8601(value, args.constraints[0] as { strict?: boolean } | undefined);
      if (answer !== undefined) return answer;
    }
    return validate(value, args);
  };
}

/**
 * `@MaxLength(max)`: a string of at most `max` UTF-16 units passes here. validator counts a surrogate pair or a
 * character with its presentation selector as one, so its length is never more than `.length`; a longer string is
 * validator's to count (its two regular expressions allocated an array per call, whatever the string).
 */
function withMaxLengthFastPath(validate: ConstraintCheck['validate'], [max]: unknown[]): ConstraintCheck['validate'] {
  if (typeof max !== 'number') return validate;
  return (value, args) => (typeof value === 'string' && value.length <= max ? true : validate(value, args));
}

function nestedSchemaOf(metadata: { target: { name: string } | string } | undefined): string | undefined {
  if (!metadata) return undefined;
  return typeof metadata.target === 'string' ? metadata.target : metadata.target.name;
}

function checkFor(target: Class, schema: string | undefined): ClassCheck {
  let bySchema = compiled.get(target);
  if (!bySchema) compiled.set(target, (bySchema = new Map()));
  let check = bySchema.get(schema);
  if (!check) bySchema.set(schema, (check = compile(target, schema)));
  return check;
}

function passesConstraint(constraint: ConstraintCheck, object: object, value: unknown): boolean {
  const { args } = constraint;
  args.object = object;
  args.value = value;
  if (constraint.each && (Array.isArray(value) || value instanceof Set || value instanceof Map)) {
    for (const item of Array.isArray(value) ? value : Array.from(value instanceof Map ? value.values() : value)) {
      if (!passesResult(constraint.validate(item, args))) return false;
    }
    return true;
  }
  return passesResult(constraint.validate(value, args));
}

/** A promise (an async constraint class-validator did not mark async) is not a pass the fast path can vouch for. */
function passesResult(result: unknown): boolean {
  return result === true || (Boolean(result) && typeof (result as Promise<unknown>)?.then !== 'function');
}

/** `@ValidateNested`: an array's items one by one (an undefined item passes), an object by its class, anything else fails. */
function passesNested(value: unknown, schema: string): boolean {
  if (value === undefined) return true;
  if (Array.isArray(value) || value instanceof Set || value instanceof Map) {
    for (const item of value instanceof Map ? value.values() : value) if (!passesNested(item, schema)) return false;
    return true;
  }
  if (value instanceof Object) return passesInstance(value, schema);
  return false;
}

/** forbidNonWhitelisted (own enumerable keys, as Object.keys, without its array), then every property's checks. */
function passesInstance(object: object, schema: string | undefined): boolean {
  return checkFor(object.constructor as unknown as Class, schema).passes(object);
}

/** The properties `cls`'s validation rules name: the only ones a value that passes can have (the whitelist). */
export function declaredProperties(cls: Class): ReadonlySet<string> {
  return checkFor(cls, undefined).known;
}

/** True when `validateSync(instance, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true })` finds nothing. */
export const passesValidation: InstanceCheck = (instance) => passesInstance(instance, undefined);

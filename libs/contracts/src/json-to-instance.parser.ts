import type { ClassConstructor } from 'class-transformer';
import { TransformationType } from 'class-transformer';
import type { MetadataStorage } from 'class-transformer/types/MetadataStorage';
import { declaredProperties } from './compiled-validator.parser';
import { generateFunction } from './generated-function.parser';

/** A class `@Type` may name. */
type Class = new () => object;

// class-transformer exports the storage its decorators write to only from this path (its types are under types/).
const { defaultMetadataStorage } = require('class-transformer/cjs/storage') as { defaultMetadataStorage: MetadataStorage };

/**
 * `plainToInstance(cls, json, { enableImplicitConversion: false })` for a value fresh from `JSON.parse`, on the
 * common path only: plain objects, arrays and primitives, classes whose only class-transformer decorator is a
 * plain `@Type(() => X)`. It builds exactly what class-transformer builds (the class's instance, `@Type` properties
 * as instances of their class, arrays item by item, other objects as plain copies) without class-transformer's
 * per-key metadata lookups. Anything off that path (a key class-transformer skips or treats specially such as
 * `constructor`, `__proto__` or a name on the prototype, `@Expose`/`@Exclude`/`@Transform`, discriminators, Map/Set/Date/
 * primitive types) answers `undefined`, and the caller uses class-transformer itself.
 * `json-to-instance.parser.unit.spec.ts` holds the two to deep, prototype-strict equality on generated messages.
 */
export function jsonToInstance<T extends object>(cls: ClassConstructor<T>, plain: object): T | undefined {
  const built = copy(plain, cls);
  return built === UNSUPPORTED ? undefined : (built as T);
}

const UNSUPPORTED = Symbol('unsupported');
/**
 * Per class: the properties its validation rules name (the only ones a valid value has), each with the class `@Type`
 * names (or null), resolved once; or UNSUPPORTED for a class class-transformer treats specially.
 */
interface Shape {
  declared: ReadonlySet<string>;
  types: Map<string, Class | null | typeof UNSUPPORTED>;
  /** A plain object's copy into a new instance of the class (see generateCopy). */
  copy: (plain: object) => unknown;
}
const shapes = new Map<Class, Shape | typeof UNSUPPORTED>();

function shapeOf(cls: Class): Shape | typeof UNSUPPORTED {
  let shape = shapes.get(cls);
  if (shape === undefined) {
    const decorated =
      defaultMetadataStorage.getStrategy(cls) !== 'none' ||
      defaultMetadataStorage.getExposedMetadatas(cls).length > 0 ||
      defaultMetadataStorage.getExcludedMetadatas(cls).length > 0;
    if (decorated) {
      shapes.set(cls, UNSUPPORTED);
      return UNSUPPORTED;
    }
    const created: Shape = { declared: declaredProperties(cls), types: new Map(), copy: () => UNSUPPORTED };
    shapes.set(cls, created); // before generating: a class whose @Type names itself finds its shape
    created.copy = generateCopy(cls, created);
    shape = created;
  }
  return shape;
}

/**
 * The class `@Type` gives `key` of `cls`: null without one, UNSUPPORTED when class-transformer would do more.
 * Only declared properties are remembered: the names a caller sends are unbounded (and refused by validation).
 */
function propertyType(cls: Class, key: string): Class | null | typeof UNSUPPORTED {
  const shape = shapeOf(cls);
  if (shape === UNSUPPORTED) return UNSUPPORTED;
  if (!shape.declared.has(key)) return resolvePropertyType(cls, key);
  let type = shape.types.get(key);
  if (type === undefined) {
    type = resolvePropertyType(cls, key);
    shape.types.set(key, type);
  }
  return type;
}

/** How many property types of `cls` are remembered (tests: it never grows with the names callers send). */
export function rememberedPropertyTypes(cls: Class): number {
  const shape = shapes.get(cls);
  return shape === undefined || shape === UNSUPPORTED ? 0 : shape.types.size;
}

function resolvePropertyType(cls: Class, key: string): Class | null | typeof UNSUPPORTED {
  if (defaultMetadataStorage.findTransformMetadatas(cls, key, TransformationType.PLAIN_TO_CLASS).length > 0) return UNSUPPORTED;
  const metadata = defaultMetadataStorage.findTypeMetadata(cls, key);
  if (!metadata) return null;
  const reflected: unknown = metadata.reflectedType;
  if (metadata.options?.discriminator || reflected === Map || reflected === Set) return UNSUPPORTED;
  // `@Type(() => X)`: a function of nothing, so its answer does not depend on the value (an argument-taking one might).
  if (!metadata.typeFunction || metadata.typeFunction.length > 0) return UNSUPPORTED;
  const type = metadata.typeFunction() as Class | undefined;
  if (typeof type !== 'function' || [String, Number, Boolean, Date, Buffer, Map, Set, Promise].includes(type as never)) return UNSUPPORTED;
  return type;
}

function copy(value: unknown, type: Class | null): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const items: unknown[] = [];
    for (const item of value) {
      const built = copy(item, type);
      if (built === UNSUPPORTED) return UNSUPPORTED;
      items.push(built);
    }
    return items;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return UNSUPPORTED;
  if (type === null) {
    const target: Record<string, unknown> = {};
    for (const key in value) {
      if (Object.hasOwn(value, key) && !copyProperty(target, null, key, (value as Record<string, unknown>)[key])) return UNSUPPORTED;
    }
    return target;
  }
  const shape = shapeOf(type);
  return shape === UNSUPPORTED ? UNSUPPORTED : shape.copy(value);
}

/**
 * One property onto `target` (an instance of `type`, or a plain object for null) the long way; false where
 * class-transformer has a rule of its own: it skips `__proto__`, `constructor` and any name the instance inherits or
 * holds as a function, and its own path keeps that rule.
 */
function copyProperty(target: Record<string, unknown>, type: Class | null, key: string, value: unknown): boolean {
  if (key === '__proto__' || key === 'constructor') return false;
  if (key in target && (!Object.prototype.hasOwnProperty.call(target, key) || typeof target[key] === 'function')) return false;
  const resolved = type ? propertyType(type, key) : null;
  if (resolved === UNSUPPORTED) return false;
  const built = copy(value, resolved);
  if (built === UNSUPPORTED) return false;
  target[key] = built;
  return true;
}

/**
 * The copy into `cls` as one function generated for the class: each declared property that a fresh instance neither
 * inherits nor holds as a function (the same for every instance) is assigned by its own name (`target["amount"]`, a
 * store V8 specialises to the class's shape), a primitive at once, an object or array through `copy` with its
 * `@Type`; any other name takes `copyProperty`. The loop it replaces stored every property of every class through one
 * keyed store and looked each name up in a map (docs/benchmarks.md, issue 17, session 26). What goes into the source
 * is JSON-quoted property names; the class, the types and the helpers are passed in (generateFunction).
 */
function generateCopy(cls: Class, shape: Shape): (plain: object) => unknown {
  const named = [[cls, 'Cls'], [copy, 'copy'], [copyProperty, 'copyProperty'], [UNSUPPORTED, 'UNSUPPORTED']] as const;
  return generateFunction((name) => copySource(cls, shape, name), named);
}

function copySource(cls: Class, shape: Shape, name: (value: unknown) => string): string {
  const fresh = new cls() as Record<string, unknown>;
  const cases: string[] = [];
  for (const key of shape.declared) {
    if (key === '__proto__' || key === 'constructor') continue;
    if (key in fresh && (!Object.prototype.hasOwnProperty.call(fresh, key) || typeof fresh[key] === 'function')) continue;
    const type = propertyType(cls, key);
    if (type === UNSUPPORTED) continue;
    const quoted = JSON.stringify(key);
    cases.push(
      `case ${quoted}:
        v = value[${quoted}];
        if (v !== null && typeof v === 'object' && (v = copy(v, ${type === null ? 'null' : name(type)})) === UNSUPPORTED) return UNSUPPORTED;
        target[${quoted}] = v;
        continue;`,
    );
  }
  return `return function copyInto(value) {
  const target = new Cls();
  let v;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    switch (key) {
      ${cases.join('\n      ')}
    }
    if (!copyProperty(target, Cls, key, value[key])) return UNSUPPORTED;
  }
  return target;
};`;
}

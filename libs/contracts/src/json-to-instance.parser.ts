import type { ClassConstructor } from 'class-transformer';
import { TransformationType } from 'class-transformer';
import type { MetadataStorage } from 'class-transformer/types/MetadataStorage';
import { declaredProperties } from './compiled-validator.parser';

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
  /**
   * The declared properties already seen that a fresh instance neither inherits nor holds as a function (so `copy`
   * may assign them without asking again), with their `@Type` class: one lookup per property on the common path.
   */
  assignable: Map<string, Class | null>;
}
const shapes = new Map<Class, Shape | typeof UNSUPPORTED>();

function shapeOf(cls: Class): Shape | typeof UNSUPPORTED {
  let shape = shapes.get(cls);
  if (shape === undefined) {
    const decorated =
      defaultMetadataStorage.getStrategy(cls) !== 'none' ||
      defaultMetadataStorage.getExposedMetadatas(cls).length > 0 ||
      defaultMetadataStorage.getExcludedMetadatas(cls).length > 0;
    shape = decorated ? UNSUPPORTED : { declared: declaredProperties(cls), types: new Map(), assignable: new Map() };
    shapes.set(cls, shape);
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
  const shape = type ? shapeOf(type) : undefined;
  if (shape === UNSUPPORTED) return UNSUPPORTED;
  const target = (type ? new type() : {}) as Record<string, unknown>;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue; // own enumerable keys, as Object.keys, without its array
    let itemType = shape?.assignable.get(key);
    if (itemType === undefined) {
      // class-transformer skips these, and any name the instance inherits or holds as a function; its own path keeps that rule.
      if (key === '__proto__' || key === 'constructor') return UNSUPPORTED;
      if (key in target && (!Object.prototype.hasOwnProperty.call(target, key) || typeof target[key] === 'function')) return UNSUPPORTED;
      const resolved = type ? propertyType(type, key) : null;
      if (resolved === UNSUPPORTED) return UNSUPPORTED;
      // Whether the instance inherits the name or holds it as a function does not change from one instance to the next.
      if (shape?.declared.has(key)) shape.assignable.set(key, resolved);
      itemType = resolved;
    }
    const built = copy((value as Record<string, unknown>)[key], itemType);
    if (built === UNSUPPORTED) return UNSUPPORTED;
    target[key] = built;
  }
  return target;
}

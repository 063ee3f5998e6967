import fc from 'fast-check';

/** The part of JSON Schema / OpenAPI 3.0 schemas the walker understands (`$ref`s resolved beforehand). */
export interface JsonSchema {
  type?: 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object' | 'null';
  nullable?: boolean;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  maxProperties?: number;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  allOf?: JsonSchema[];
  example?: unknown;
}

/** Bounds that keep generated requests small (a fuzz run sends hundreds); the schema's own bounds still hold. */
const CAP = { string: 48, items: 4, keys: 4 } as const;

const DAY = 24 * 3600 * 1000;

/** Lookahead assertions (`(?=…)`, `(?!…)`): fast-check's stringMatching does not take them, Ajv-style filtering does. */
const LOOKAHEAD = /\(\?[=!][^()]*\)/g;

function stringArbitrary(schema: JsonSchema): fc.Arbitrary<string> {
  if (schema.format === 'date-time' || schema.format === 'date') {
    // Instants near now half the time: services refuse most of a century (usage from the future, expiries in the past).
    const now = Date.now();
    const near = fc.integer({ min: -7 * DAY, max: 7 * DAY }).map((offset) => new Date(now + offset));
    const wide = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true });
    return fc.oneof(near, wide).map((d) => (schema.format === 'date' ? d.toISOString().slice(0, 10) : d.toISOString()));
  }
  const minLength = schema.minLength ?? 0;
  const maxLength = schema.maxLength ?? Math.max(minLength, CAP.string);
  if (schema.format === 'uri') {
    // Absolute http(s) URLs (the product links a portal token carries).
    return fc.webUrl({ validSchemes: ['http', 'https'], withQueryParameters: true }).filter((s) => s.length >= minLength && s.length <= maxLength);
  }
  if (schema.pattern) {
    const full = new RegExp(schema.pattern);
    return fc.stringMatching(new RegExp(schema.pattern.replace(LOOKAHEAD, ''))).filter((s) => full.test(s) && s.length >= minLength && s.length <= maxLength);
  }
  const short = fc.string({ minLength, maxLength: Math.min(maxLength, Math.max(minLength, CAP.string)) });
  // Strings at the schema's own limit too: the edge a validator or a column is most likely to get wrong.
  return schema.maxLength === undefined ? short : fc.oneof(short, fc.string({ minLength: schema.maxLength, maxLength: schema.maxLength, unit: 'grapheme-ascii' }));
}

function objectArbitrary(schema: JsonSchema): fc.Arbitrary<Record<string, unknown>> {
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const known = fc.record(
    Object.fromEntries(Object.entries(properties).map(([name, property]) => [name, arbitraryFor(property)])),
    { requiredKeys: Object.keys(properties).filter((name) => required.has(name)) },
  ) as fc.Arbitrary<Record<string, unknown>>;
  const extra = schema.additionalProperties;
  if (!extra || Object.keys(properties).length > 0) return known;
  const values = extra === true ? fc.jsonValue({ maxDepth: 1 }) : arbitraryFor(extra);
  const maxKeys = Math.min(schema.maxProperties ?? CAP.keys, CAP.keys);
  return fc.dictionary(fc.string({ minLength: 1, maxLength: 16 }).filter((k) => k !== '__proto__'), values, { maxKeys });
}

/** `allOf` as one schema: properties, required and the other keywords of every part (the last part wins on a clash). */
function mergeAll(parts: JsonSchema[]): JsonSchema {
  return parts.reduce<JsonSchema>(
    (merged, part) => ({
      ...merged,
      ...part,
      properties: { ...merged.properties, ...part.properties },
      required: [...(merged.required ?? []), ...(part.required ?? [])],
    }),
    {},
  );
}

/**
 * A fast-check arbitrary of the values a schema accepts (within small caps on sizes): the valid half of a fuzz run,
 * generated from the OpenAPI document so a new field or endpoint is covered without a test change; a schema's
 * `example` is one of the values. Unit-tested: every value it generates for the public document's schemas passes Ajv.
 */
export function arbitraryFor(schema: JsonSchema): fc.Arbitrary<unknown> {
  const base = ((): fc.Arbitrary<unknown> => {
    if (schema.allOf) return arbitraryFor(mergeAll(schema.allOf));
    if (schema.oneOf) return fc.oneof(...schema.oneOf.map(arbitraryFor));
    if (schema.anyOf) return fc.oneof(...schema.anyOf.map(arbitraryFor));
    if (schema.enum) return fc.constantFrom(...schema.enum);
    switch (schema.type ?? (schema.properties || schema.additionalProperties ? 'object' : undefined)) {
      case 'string':
        return stringArbitrary(schema);
      case 'integer':
        return fc.integer({ min: schema.minimum ?? -(2 ** 31), max: schema.maximum ?? 2 ** 31 - 1 });
      case 'number':
        return fc.double({ min: schema.minimum ?? -1e9, max: schema.maximum ?? 1e9, noNaN: true, noDefaultInfinity: true });
      case 'boolean':
        return fc.boolean();
      case 'null':
        return fc.constant(null);
      case 'array':
        return fc.array(arbitraryFor(schema.items ?? {}), { minLength: schema.minItems ?? 0, maxLength: Math.max(schema.minItems ?? 0, Math.min(schema.maxItems ?? CAP.items, CAP.items)) });
      case 'object':
        return objectArbitrary(schema);
      default:
        return fc.jsonValue({ maxDepth: 2 });
    }
  })();
  // The document's example (valid by the unit test below) half the time: generated strings rarely name a real
  // model, plan or pack, and requests that pass validation are the ones that reach the handlers.
  const withExample = schema.example !== undefined && !schema.oneOf && !schema.allOf ? fc.oneof(fc.constant(schema.example), base) : base;
  return schema.nullable ? fc.option(withExample, { nil: null, freq: 4 }) : withExample;
}

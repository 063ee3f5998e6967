import fc from 'fast-check';
import type { ParameterObject } from '@nestjs/swagger';
import { arbitraryFor, type JsonSchema } from './json-schema-arbitrary.fixtures';
import type { ApiOperation, OpenApiContract } from './openapi-contract.harness';

/** Every hostile string carries it: a refusal must never quote it back. */
export const ECHO_MARKER = 'zq7echo7qz';
const M = ECHO_MARKER;

const deep = (depth: number, open: string, close: string, inner = '1') => `${open.repeat(depth)}${inner}${close.repeat(depth)}`;

/**
 * Values put in place of a field: wrong types, null, oversized strings and arrays, NUL and lone surrogates, deep
 * nesting, huge numbers, numbers as strings outside the bounds, and timestamps and links a permissive check takes
 * but a stricter reader after it does not (ISO 8601 shapes JavaScript's Date or PostgreSQL refuse; hosts WHATWG's URL
 * refuses: these carry no marker, their shape is the point). `unsafe` ones (text PostgreSQL cannot store, or nesting
 * past 32 levels) are refused wherever they appear, whatever the schema says.
 */
export const HOSTILE_VALUES: readonly { value: unknown; unsafe?: boolean }[] = [
  { value: null },
  { value: [] },
  { value: [M] },
  { value: true },
  { value: {} },
  { value: -1.5 },
  { value: 0 },
  { value: 1e308 },
  { value: -(2 ** 63) },
  { value: 2 ** 64 },
  { value: '-1' },
  { value: '1000000000.000001' },
  { value: '100000000000.000001' },
  { value: '1e9' },
  { value: '0x10' },
  { value: '99999999999999999999999999999999' },
  { value: '' },
  { value: `${M}${'x'.repeat(10_000)}` },
  { value: Array.from({ length: 2_000 }, () => M) },
  { value: `${M}\u0000`, unsafe: true },
  { value: `\ud800${M}`, unsafe: true },
  { value: `${M}\udfff`, unsafe: true },
  { value: { [`k\u0000${M}`]: 1 }, unsafe: true },
  { value: JSON.parse(deep(50, '{"a":', '}', `"${M}"`)), unsafe: true },
  { value: `${M}🙂\u202e\t` },
  { value: '2026-11' },
  { value: '2026-W48-1' },
  { value: '2026-12-31T10Z' },
  { value: '2026-12-31T10:00:00' },
  { value: 'http://\u2488.com' },
];

/** Path segments and query values no id or parameter accepts (percent-encoded as sent). */
export const HOSTILE_URL_PARTS: readonly string[] = [
  '%00', `${M}%00`, `${M}%ED%A0%80`, `%ED%B0%80${M}`, '%', `%zz${M}`, `%C0%AF${M}`, `${M}${'x'.repeat(400)}`, 'a'.repeat(129),
  '..%2F..%2Fetc%2Fpasswd', `%F0%9F%92%A9${M}`, '%20', `${M}%0A`, '',
];

/** Whole bodies that are not a JSON object, or not JSON, or not sent as JSON: refused by every body route. */
export function rawBodies(bodyLimit: number): { label: string; body: string | Buffer; contentType?: string }[] {
  const json = 'application/json';
  return [
    { label: 'empty JSON body', body: '', contentType: json },
    { label: 'null body', body: 'null', contentType: json },
    { label: 'array body', body: `["${M}"]`, contentType: json },
    { label: 'string body', body: `"${M}"`, contentType: json },
    { label: 'number body', body: '12345', contentType: json },
    { label: 'truncated JSON', body: `{"a":"${M}`, contentType: json },
    { label: 'trailing comma', body: `{"a":"${M}",}`, contentType: json },
    { label: 'JSON with a comment', body: `{"a":1 /* ${M} */}`, contentType: json },
    { label: 'JSON nested 10,000 deep', body: deep(10_000, '{"a":', '}', `"${M}"`), contentType: json },
    { label: 'arrays nested 10,000 deep', body: deep(10_000, '[', ']', `"${M}"`), contentType: json },
    { label: 'prototype poisoning', body: `{"__proto__":{"polluted":"${M}"}}`, contentType: json },
    { label: 'constructor poisoning', body: `{"constructor":{"prototype":{"polluted":"${M}"}}}`, contentType: json },
    { label: 'invalid UTF-8', body: Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf]), Buffer.from(`${M}"}`)]), contentType: json },
    { label: 'escaped NUL in a key', body: `{"a\\u0000${M}":1}`, contentType: json },
    { label: 'escaped lone surrogate', body: `{"a":"\\ud800${M}"}`, contentType: json },
    { label: 'body over the size limit', body: `{"a":"${'x'.repeat(bodyLimit + 1)}"}`, contentType: json },
    { label: 'no content type', body: `{"a":"${M}"}` },
  ];
}

/** Media types that are not JSON (a charset parameter on application/json is not one: RFC 8259 JSON is UTF-8, the parameter means nothing). */
const WRONG_CONTENT_TYPES = ['text/plain', 'application/x-www-form-urlencoded', `application/${M}`, 'application/vnd.api+json', 'multipart/form-data; boundary=b', 'application/xml', 'text/json'];

/** One request of a fuzz run, and whether the document says it must be refused. */
export interface FuzzRequest {
  label: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** The document (or the platform's rules on text and nesting) refuses it: a 2xx is a defect. */
  mustRefuse: boolean;
}

export interface FuzzContext {
  contract: OpenApiContract;
  apiKey: string;
  /** Path parameter values that name existing things (e.g. a funded account), mixed with generated ones. */
  pathValues?: Record<string, string>;
  /** The service's body limit in bytes (a body one byte over must be 413). */
  bodyLimit: number;
}

interface BodyPath {
  path: (string | number)[];
  schema: JsonSchema;
}

/** Every object node of a body with the schema that describes it (for replacing, removing and adding fields). */
function objectPaths(value: unknown, schema: JsonSchema, path: (string | number)[] = []): BodyPath[] {
  if (typeof value !== 'object' || value === null) return [];
  const here: BodyPath[] = Array.isArray(value) ? [] : [{ path, schema }];
  const children = Array.isArray(value)
    ? value.flatMap((item, index) => objectPaths(item, schema.items ?? {}, [...path, index]))
    : Object.entries(value).flatMap(([key, child]) => objectPaths(child, schema.properties?.[key] ?? variantProperty(schema, key), [...path, key]));
  return [...here, ...children];
}

/** The schema of a property inside a oneOf/allOf (the usage event or its batch). */
function variantProperty(schema: JsonSchema, key: string): JsonSchema {
  for (const variant of [...(schema.oneOf ?? []), ...(schema.anyOf ?? []), ...(schema.allOf ?? [])]) {
    if (variant.properties?.[key]) return variant.properties[key];
  }
  return {};
}

const at = (root: unknown, path: (string | number)[]): unknown => path.reduce<unknown>((node, key) => (node as Record<string | number, unknown>)?.[key], root);

type BodyMutation = { kind: 'replace' | 'remove' | 'add'; path: (string | number)[]; key: string; hostile?: (typeof HOSTILE_VALUES)[number] };

function mutateBody(body: unknown, mutation: BodyMutation): unknown {
  const copy = structuredClone(body);
  const parent = at(copy, mutation.path) as Record<string, unknown>;
  if (mutation.kind === 'remove') delete parent[mutation.key];
  else parent[mutation.kind === 'add' ? `unexpected_${mutation.key}` : mutation.key] = structuredClone(mutation.hostile?.value);
  return copy;
}

/** Percent-encoding that also sends a lone surrogate (as the 3 bytes WTF-8 gives it, which no UTF-8 decoder accepts). */
function encode(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return [...value]
      .map((char) => {
        const code = char.charCodeAt(0);
        if (char.length > 1 || code < 0xd800 || code > 0xdfff) return encodeURIComponent(char);
        return [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((byte) => `%${byte.toString(16).toUpperCase()}`).join('');
      })
      .join('');
  }
}

const queryOf = (values: Record<string, unknown>): string => {
  const entries = Object.entries(values).filter(([, v]) => v !== undefined);
  return entries.length === 0 ? '' : `?${entries.map(([k, v]) => `${encode(k)}=${encode(String(v))}`).join('&')}`;
};

/**
 * The requests of one operation's fuzz run, all generated from the document: valid ones (schema-generated path
 * ids, query and body), and mutated ones (a body field replaced by a hostile value, a required one removed, an
 * unknown one added, a raw body, a wrong content type, a hostile path id or query value, a missing or wrong API
 * key, a header block over 16 KiB). A mutation is `mustRefuse` when Ajv finds the result invalid against the
 * document, or it carries unsafe text.
 */
export function fuzzRequests(operation: ApiOperation, context: FuzzContext): fc.Arbitrary<FuzzRequest> {
  const { contract, apiKey } = context;
  const method = operation.method.toUpperCase();
  const parameters = (operation.operation.parameters ?? []) as ParameterObject[];
  const pathParams = parameters.filter((p) => p.in === 'path');
  const queryParams = parameters.filter((p) => p.in === 'query');
  const schemaOf = (p: ParameterObject) => contract.resolve(p.schema ?? { type: 'string' }) as JsonSchema;
  const pathValues = fc.record(
    Object.fromEntries(
      pathParams.map((p) => {
        const generated = arbitraryFor(schemaOf(p)) as fc.Arbitrary<string>;
        const known = context.pathValues?.[p.name];
        return [p.name, known === undefined ? generated : fc.oneof({ arbitrary: fc.constant(known), weight: 3 }, { arbitrary: generated, weight: 1 })];
      }),
    ),
  ) as fc.Arbitrary<Record<string, string>>;
  const query = fc.record(Object.fromEntries(queryParams.map((p) => [p.name, arbitraryFor(schemaOf(p))])), { requiredKeys: [] }) as fc.Arbitrary<Record<string, unknown>>;
  const bodySchema = operation.bodySchema as JsonSchema | undefined;
  const body = bodySchema ? arbitraryFor(bodySchema) : fc.constant(undefined);
  const url = (values: Record<string, string>, q: Record<string, unknown>, raw: Record<string, string> = {}) =>
    operation.template.replace(/\{(\w+)\}/g, (_m, name: string) => raw[name] ?? encode(values[name])) + queryOf(q);
  const auth = { authorization: `Bearer ${apiKey}` };
  const asJson = (value: unknown) => (value === undefined ? {} : { headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(value) });
  const valid = fc.tuple(pathValues, query, body);

  const kinds: fc.WeightedArbitrary<FuzzRequest>[] = [
    {
      weight: 2,
      arbitrary: valid.map(([values, q, b]) => ({ label: 'valid', method, path: url(values, q), headers: auth, ...asJson(b), mustRefuse: false })),
    },
  ];
  if (bodySchema) {
    const mutation = valid.chain(([values, q, b]) => {
      const nodes = objectPaths(b, bodySchema);
      const choices: fc.Arbitrary<BodyMutation>[] = [];
      if (nodes.length > 0) {
        const node = fc.constantFrom(...nodes);
        const field = node.chain(({ path }) => {
          const keys = Object.keys(at(b, path) as object);
          return keys.length === 0 ? fc.constant({ path, key: 'x' }) : fc.constantFrom(...keys).map((key) => ({ path, key }));
        });
        choices.push(fc.tuple(field, fc.constantFrom(...HOSTILE_VALUES)).map(([f, hostile]) => ({ kind: 'replace' as const, ...f, hostile })));
        choices.push(field.map((f) => ({ kind: 'remove' as const, ...f })));
        choices.push(fc.tuple(node, fc.constantFrom(...HOSTILE_VALUES)).map(([{ path }, hostile]) => ({ kind: 'add' as const, path, key: 'field', hostile })));
      }
      if (choices.length === 0) return fc.constant(undefined);
      return fc.oneof(...choices).map((m) => ({ values, q, body: mutateBody(b, m), mutation: m }));
    });
    kinds.push({
      weight: 5,
      arbitrary: mutation
        .filter((m): m is NonNullable<typeof m> => m !== undefined)
        .map(({ values, q, body: mutated, mutation: m }) => ({
          label: `${m.kind} ${[...m.path, m.key].join('.') || '(root)'}${m.hostile ? ` = ${JSON.stringify(m.hostile.value)?.slice(0, 40)}` : ''}`,
          method,
          path: url(values, q),
          headers: auth,
          ...asJson(mutated),
          mustRefuse: m.hostile?.unsafe === true || !contract.accepts(bodySchema, mutated),
        })),
    });
    kinds.push({
      weight: 1,
      arbitrary: fc.tuple(valid, fc.constantFrom(...rawBodies(context.bodyLimit))).map(([[values, q], raw]) => ({
        label: raw.label,
        method,
        path: url(values, q),
        headers: { ...auth, ...(raw.contentType ? { 'content-type': raw.contentType } : {}) },
        body: raw.body,
        mustRefuse: true,
      })),
    });
    kinds.push({
      weight: 1,
      arbitrary: fc.tuple(valid, fc.constantFrom(...WRONG_CONTENT_TYPES)).map(([[values, q, b], type]) => ({
        label: `content type ${type}`, method, path: url(values, q), headers: { ...auth, 'content-type': type }, body: JSON.stringify(b), mustRefuse: true,
      })),
    });
  }
  if (pathParams.length > 0) {
    kinds.push({
      weight: 2,
      arbitrary: fc.tuple(valid, fc.constantFrom(...pathParams.map((p) => p.name)), fc.constantFrom(...HOSTILE_URL_PARTS)).map(([[values, q, b], name, part]) => ({
        label: `${name} = ${part.slice(0, 40)}`, method, path: url(values, q, { [name]: part }), headers: auth, ...asJson(b), mustRefuse: true,
      })),
    });
  }
  if (queryParams.length > 0) {
    kinds.push({
      weight: 2,
      arbitrary: fc.tuple(valid, fc.constantFrom(...queryParams), fc.constantFrom(...HOSTILE_VALUES)).map(([[values, q, b], param, hostile]) => {
        const value = typeof hostile.value === 'string' ? hostile.value : JSON.stringify(hostile.value);
        return {
          label: `query ${param.name} = ${value.slice(0, 40)}`,
          method,
          path: url(values, { ...q, [param.name]: value }),
          headers: auth,
          ...asJson(b),
          mustRefuse: hostile.unsafe === true || !contract.accepts(schemaOf(param), value),
        };
      }),
    });
  }
  if (operation.secured) {
    const wrongAuth = [{}, { authorization: `Bearer ${M}-not-a-key` }, { authorization: `Basic ${apiKey}` }, { authorization: apiKey }, { authorization: 'Bearer ' }];
    kinds.push({
      weight: 1,
      arbitrary: fc.tuple(valid, fc.constantFrom(...wrongAuth)).map(([[values, q, b], headers]) => ({
        label: `authorization ${JSON.stringify(headers).slice(0, 40)}`, method, path: url(values, q), ...asJson(b), headers: { ...asJson(b).headers, authorization: '', ...headers }, mustRefuse: true,
      })).map((request) => ({ ...request, headers: Object.fromEntries(Object.entries(request.headers).filter(([, v]) => v !== '')) })),
    });
  }
  kinds.push({
    weight: 1,
    arbitrary: valid.map(([values, q, b]) => ({ label: 'header block over 16 KiB', method, path: url(values, q), ...asJson(b), headers: { ...asJson(b).headers, ...auth, 'x-junk': `${M}${'h'.repeat(20_000)}` }, mustRefuse: true })),
  });
  return fc.oneof(...kinds);
}

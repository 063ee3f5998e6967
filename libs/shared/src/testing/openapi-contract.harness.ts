import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { OpenAPIObject, OperationObject, ParameterObject, ResponseObject } from '@nestjs/swagger';
import { operationsOf, type HttpMethod } from '../openapi/openapi-document.view';

/** One operation of a document: its method, path template and id. */
export interface ApiOperation {
  method: HttpMethod;
  template: string;
  operationId: string;
  operation: OperationObject;
  /** Path parameters in the order of the template. */
  pathParameters: string[];
  /** The JSON schema of the body, if the operation takes one. */
  bodySchema?: Record<string, unknown>;
  secured: boolean;
}

/** What came back for one request. */
export interface Exchange {
  status: number;
  headers: Headers;
  text: string;
}

type Json = Record<string, unknown>;

/**
 * A service's OpenAPI document as a contract tests hold answers to: `problemWith` names what an answer does that the
 * document does not describe (a status it does not list, a body its schema refuses, a missing Retry-After, a
 * content type it does not produce). Schemas are checked by Ajv (with ajv-formats), with OpenAPI 3.0's
 * `nullable` turned into JSON Schema.
 */
export class OpenApiContract {
  private readonly ajv: Ajv;
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly schemaValidators = new WeakMap<object, ValidateFunction>();
  readonly operations: ApiOperation[];

  constructor(readonly document: OpenAPIObject) {
    this.ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: 'openapi', components: toJsonSchema(document.components ?? {}) as Json });
    this.operations = operationsOf(document).map(({ path, method, operation }) => {
      const body = (operation.requestBody as { content?: Record<string, { schema?: Json }> } | undefined)?.content?.['application/json']?.schema;
      return {
        method,
        template: path,
        operationId: operation.operationId ?? `${method} ${path}`,
        operation,
        pathParameters: [...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]),
        bodySchema: body ? (this.resolve(body) as Json) : undefined,
        secured: (operation.security ?? []).length > 0,
      };
    });
  }

  /** The document a running service serves at /docs-json. */
  static async served(baseUrl: string): Promise<OpenApiContract> {
    const response = await fetch(`${baseUrl}/docs-json`);
    if (response.status !== 200) throw new Error(`${baseUrl}/docs-json answered ${response.status}`);
    return new OpenApiContract((await response.json()) as OpenAPIObject);
  }

  /** A schema with its `$ref`s to components inlined one level at a time (for generating values). */
  resolve(schema: unknown): unknown {
    const seen = new Set<string>();
    const walk = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(walk);
      if (typeof node !== 'object' || node === null) return node;
      const ref = (node as { $ref?: string }).$ref;
      if (typeof ref === 'string') {
        if (seen.has(ref)) return {};
        seen.add(ref);
        const target = ref.replace('#/', '').split('/').reduce<unknown>((at, key) => (at as Json)?.[key], this.document);
        const resolved = walk(target);
        seen.delete(ref);
        return resolved;
      }
      return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, walk(value)]));
    };
    return walk(schema);
  }

  /** Whether a value satisfies a schema of the document (resolved or with `$ref`s to its components). */
  accepts(schema: unknown, value: unknown): boolean {
    let validate = this.schemaValidators.get(schema as object);
    if (!validate) {
      validate = this.ajv.compile(toJsonSchema(schema, 'openapi') as Json);
      this.schemaValidators.set(schema as object, validate);
    }
    return validate(value) as boolean;
  }

  /** The codes the document allows for this operation and status (empty when the status is not an error of it). */
  errorCodes(operation: ApiOperation, status: number): string[] {
    const response = operation.operation.responses[status] as ResponseObject | undefined;
    const schema = response?.content?.['application/json']?.schema as { allOf?: { properties?: { code?: { enum?: string[] } } }[] } | undefined;
    return schema?.allOf?.[1]?.properties?.code?.enum ?? [];
  }

  /** What in this answer the operation's document does not describe, or undefined when it describes all of it. */
  problemWith(operation: ApiOperation, exchange: Exchange): string | undefined {
    const where = `${operation.operationId} → ${exchange.status} ${exchange.text.slice(0, 300)}`;
    const response = operation.operation.responses[exchange.status] as ResponseObject | undefined;
    if (!response) return `undocumented status: ${where}`;
    // Every documented header is expected, unless the document says it is not always sent (`required: false`).
    for (const [header, described] of Object.entries(response.headers ?? {})) {
      if ((described as { required?: boolean }).required === false) continue;
      if (!exchange.headers.has(header)) return `missing ${header} header: ${where}`;
    }
    const documented = Object.keys(response.content ?? {});
    if (documented.length === 0) return exchange.text === '' ? undefined : `undocumented body: ${where}`;
    const mediaType = (exchange.headers.get('content-type') ?? '').split(';')[0].trim();
    if (!documented.includes(mediaType)) return `content type ${mediaType || '(none)'} is not one of ${documented.join(', ')}: ${where}`;
    if (mediaType !== 'application/json') return undefined;
    let body: unknown;
    try {
      body = JSON.parse(exchange.text);
    } catch {
      return `body is not JSON: ${where}`;
    }
    const validate = this.validator(`${operation.method} ${operation.template} ${exchange.status}`, response.content?.[mediaType]?.schema);
    if (validate(body)) return undefined;
    const errors = (validate.errors ?? []).slice(0, 3).map((error) => `${error.instancePath || '(root)'} ${error.message}`).join('; ');
    return `body does not match the schema (${errors}): ${where}`;
  }

  private validator(key: string, schema: unknown): ValidateFunction {
    let validate = this.validators.get(key);
    if (!validate) {
      validate = this.ajv.compile(toJsonSchema(schema ?? {}, 'openapi') as Json);
      this.validators.set(key, validate);
    }
    return validate;
  }
}

/**
 * OpenAPI 3.0 schema → JSON Schema for Ajv: `nullable: true` becomes a `null` alternative, and `$ref`s to
 * components point into the schema registered as `refBase` (when given).
 */
export function toJsonSchema(node: unknown, refBase?: string): unknown {
  if (Array.isArray(node)) return node.map((item) => toJsonSchema(item, refBase));
  if (typeof node !== 'object' || node === null) return node;
  const { nullable, ...rest } = node as Json;
  const converted = Object.fromEntries(
    Object.entries(rest).map(([key, value]) => [
      key,
      key === '$ref' && refBase && typeof value === 'string' && value.startsWith('#/') ? `${refBase}${value}` : toJsonSchema(value, refBase),
    ]),
  );
  return nullable === true ? { anyOf: [converted, { type: 'null' }] } : converted;
}

/** The path parameters an operation declares (name → schema). */
export function pathParameterSchemas(operation: ApiOperation): Record<string, Json> {
  return Object.fromEntries(
    ((operation.operation.parameters ?? []) as ParameterObject[]).filter((p) => p.in === 'path').map((p) => [p.name, (p.schema ?? { type: 'string' }) as Json]),
  );
}

/** A request as the contract tests send it. */
export interface ContractRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/**
 * Sends one request and reads the answer; an event stream is read up to its first event and then closed (it never
 * ends by itself). A connection that fails is status -1.
 */
export async function exchange(baseUrl: string, request: ContractRequest): Promise<Exchange> {
  const controller = new AbortController();
  try {
    const response = await fetch(`${baseUrl}${request.path}`, { method: request.method, headers: request.headers, body: request.body, signal: controller.signal });
    if ((response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      const reader = response.body?.getReader();
      const first = await reader?.read();
      controller.abort();
      return { status: response.status, headers: response.headers, text: Buffer.from(first?.value ?? []).toString() };
    }
    return { status: response.status, headers: response.headers, text: await response.text() };
  } catch (error) {
    return { status: -1, headers: new Headers(), text: `fetch failed: ${(error as Error).message}` };
  }
}

/** A request an operation accepts (2xx), for the conformance check: the path with its query, and the JSON body. */
export interface ValidRequest {
  path: string;
  body?: unknown;
}

const json = (apiKey: string | undefined, body?: unknown): Pick<ContractRequest, 'headers' | 'body'> => ({
  headers: { ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
  body: body === undefined ? undefined : JSON.stringify(body),
});

/**
 * Every operation of the document, exercised at least once with a valid request (given by the test, keyed by
 * operationId; an operation with neither path parameters nor a body is called as is) and with invalid ones derived
 * from the document (no API key → 401, a malformed path id → 400, a body that is not an object → 400, a text body
 * → 415). Each answer must have the expected kind of status and be described by the document. An operation the
 * test gives no valid request for is a problem: a new endpoint cannot go unchecked.
 */
export async function conformanceProblems(contract: OpenApiContract, baseUrl: string, apiKey: string, valid: Record<string, ValidRequest[]>): Promise<string[]> {
  const problems: string[] = [];
  const known = new Set(contract.operations.map((op) => op.operationId));
  for (const id of Object.keys(valid)) if (!known.has(id)) problems.push(`valid requests given for ${id}, which the document does not have`);
  const order = Object.keys(valid);
  const covered = contract.operations.flatMap((operation) => {
    const samples = valid[operation.operationId] ?? (operation.pathParameters.length === 0 && !operation.bodySchema ? [{ path: operation.template }] : undefined);
    if (samples && samples.length > 0) return [{ operation, samples }];
    problems.push(`no valid request covers ${operation.operationId} (${operation.method.toUpperCase()} ${operation.template})`);
    return [];
  });
  const check = async (operation: ApiOperation, label: string, request: ContractRequest, expected: (status: number) => boolean) => {
    const answer = await exchange(baseUrl, request);
    if (!expected(answer.status)) problems.push(`${label}: unexpected ${answer.status} ${answer.text.slice(0, 200)} for ${request.method} ${request.path}`);
    const problem = contract.problemWith(operation, answer);
    if (problem) problems.push(`${label}: ${problem}`);
  };
  // Valid requests first, in the order the test lists them (a subscription exists before it is read or cancelled).
  const byTestOrder = [...covered].sort((a, b) => rank(order, a.operation.operationId) - rank(order, b.operation.operationId));
  for (const { operation, samples } of byTestOrder) {
    for (const sample of samples) {
      await check(operation, `${operation.operationId} valid`, { method: operation.method.toUpperCase(), path: sample.path, ...json(apiKey, sample.body) }, (s) => s >= 200 && s < 300);
    }
  }
  for (const { operation, samples: [sample] } of covered) {
    const method = operation.method.toUpperCase();
    if (operation.secured) {
      await check(operation, `${operation.operationId} without API key`, { method, path: sample.path, ...json(undefined, sample.body) }, (s) => s === 401);
    }
    for (const name of operation.pathParameters) {
      const path = operation.template.replace(/\{(\w+)\}/g, (_m, param: string) => (param === name ? 'bad%20id!' : encodeURIComponent(pathValue(operation, sample.path, param))));
      await check(operation, `${operation.operationId} with a malformed ${name}`, { method, path, ...json(apiKey, sample.body) }, (s) => s === 400);
    }
    if (operation.bodySchema) {
      await check(operation, `${operation.operationId} with an array body`, { method, path: sample.path, ...json(apiKey, []) }, (s) => s === 400);
      const text = { authorization: `Bearer ${apiKey}`, 'content-type': 'text/plain' };
      await check(operation, `${operation.operationId} with a text body`, { method, path: sample.path, headers: text, body: 'hello' }, (s) => s === 415);
    }
  }
  return problems;
}

const rank = (order: string[], id: string): number => (order.includes(id) ? order.indexOf(id) : order.length);

/** The value a concrete path gives a template's parameter (`/v1/accounts/a-1/holds/h-1`, accountId → a-1). */
export function pathValue(operation: ApiOperation, path: string, name: string): string {
  const pattern = new RegExp(`^${operation.template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{(\w+)\\?\}/g, '(?<$1>[^/?]*)')}(?:\\?|$)`);
  const value = pattern.exec(path)?.groups?.[name];
  return value === undefined ? 'x' : decodeURIComponent(value);
}

/**
 * Where the document and the service's error catalogue (code → HTTP status, as its error filter maps them)
 * disagree: a code documented under another status than the one the service answers it with. Codes the catalogue
 * does not hold (the platform's: VALIDATION_FAILED, INVALID_JSON …) are the filter's own and are not checked here.
 */
export function catalogueProblems(contract: OpenApiContract, statusByCode: Readonly<Record<string, number>>): string[] {
  return contract.operations.flatMap((operation) =>
    Object.keys(operation.operation.responses)
      .map(Number)
      .filter((status) => status >= 400)
      .flatMap((status) =>
        contract
          .errorCodes(operation, status)
          .filter((code) => code in statusByCode && statusByCode[code] !== status)
          .map((code) => `${operation.operationId} documents ${code} as ${status}, the service answers it with ${statusByCode[code]}`),
      ),
  );
}

import fc from 'fast-check';

/**
 * Malformed requests for the fuzz specs of every service: a fixed list of known-bad bodies, content types,
 * URLs and headers, plus seeded mutations of a valid body (fast-check, so a failure names its seed and case).
 * Every hostile string carries ECHO_MARKER: it must never come back in a response.
 */
export const ECHO_MARKER = 'zq7echo7qz';

export interface MalformedRequest {
  label: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The request carries something no endpoint accepts: it must be a 4xx (a GET with a junk query may be 200). */
  mustRefuse: boolean;
}

export interface BodyEndpoint {
  method: 'POST' | 'PUT';
  path: string;
  /** A body the endpoint accepts. */
  valid: Record<string, unknown>;
  /**
   * Dotted paths inside `valid` where every value of HOSTILE_VALUES is refused and which may not be left out
   * (e.g. an id, an amount, a nested object). Fields where null or absence is meaningful are not listed.
   */
  strictFields: string[];
  /** Optional fields where null or any other hostile value is still refused (replaced, never removed). */
  optionalFields?: string[];
  /** Optional fields where null has a meaning (e.g. "channel off"): replaced with every other hostile value. */
  nullableFields?: string[];
}

const M = ECHO_MARKER;
const deep = (depth: number, open: string, close: string, inner = '1') => `${open.repeat(depth)}${inner}${close.repeat(depth)}`;

/** Values no strict field of any Tally request accepts. */
export const HOSTILE_VALUES: readonly unknown[] = [
  null,
  [],
  [M],
  true,
  -1.5,
  `${M}\u0000`,
  `\u0000${M}`,
  `${M}\ud800`,
  `\udfff${M}`,
  `${M}${'x'.repeat(10_000)}`,
  { k: `\u0000${M}` },
  JSON.parse(deep(50, '{"a":', '}', `"${M}"`)),
];

/** Whole bodies that are not a usable JSON object, whatever the endpoint. */
export function rawBodyCases(method: string, path: string): MalformedRequest[] {
  const json = { 'content-type': 'application/json' };
  const raw = (label: string, body: string | Buffer, headers: Record<string, string> = json): MalformedRequest => ({ label, method, path, headers, body, mustRefuse: true });
  return [
    raw('empty JSON body', ''),
    raw('null body', 'null'),
    raw('array body', `["${M}"]`),
    raw('string body', `"${M}"`),
    raw('number body', '12345'),
    raw('boolean body', 'true'),
    raw('truncated JSON', `{"a":"${M}`),
    raw('trailing comma', `{"a":"${M}",}`),
    raw('JSON with a comment', `{"a":1 /* ${M} */}`),
    raw('single-quoted JSON', `{'a':'${M}'}`),
    raw('JSON nested 10,000 deep in objects', deep(10_000, '{"a":', '}', `"${M}"`)),
    raw('JSON nested 10,000 deep in arrays', deep(10_000, '[', ']', `"${M}"`)),
    raw('JSON nested 200 deep', `{"x":${deep(200, '{"a":', '}', `"${M}"`)}}`),
    raw('prototype poisoning', `{"__proto__":{"polluted":"${M}"}}`),
    raw('constructor poisoning', `{"constructor":{"prototype":{"polluted":"${M}"}}}`),
    raw('invalid UTF-8', Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf]), Buffer.from(`${M}"}`)])),
    raw('escaped NUL in a key', `{"a\\u0000${M}":1}`),
    raw('escaped lone surrogate in a key', `{"\\ud800${M}":1}`),
    raw('text/plain body', `{"a":"${M}"}`, { 'content-type': 'text/plain' }),
    raw('form body', `a=${M}`, { 'content-type': 'application/x-www-form-urlencoded' }),
    raw('unknown media type', `{"a":"${M}"}`, { 'content-type': `application/${M}` }),
    raw('JSON in UTF-16 charset', `{"a":"${M}"}`, { 'content-type': 'application/json; charset=utf-16' }),
    raw('multipart body', `--b\r\n\r\n${M}\r\n--b--`, { 'content-type': 'multipart/form-data; boundary=b' }),
  ];
}

/** Seeded mutations of a valid body: each replaces or removes strict fields, or adds unknown properties. */
export function mutatedBodyCases(endpoint: BodyEndpoint, options: { seed: number; runs: number }): MalformedRequest[] {
  const { strictFields, optionalFields = [], nullableFields = [] } = endpoint;
  const replaceable = [...strictFields, ...optionalFields];
  const objects = ['', ...replaceable.filter((f) => isObject(get(endpoint.valid, f)))];
  const choices = [
    ...(replaceable.length > 0 ? [fc.record({ kind: fc.constant('replace' as const), field: fc.constantFrom(...replaceable), value: fc.constantFrom(...HOSTILE_VALUES) })] : []),
    ...(nullableFields.length > 0 ? [fc.record({ kind: fc.constant('replace' as const), field: fc.constantFrom(...nullableFields), value: fc.constantFrom(...HOSTILE_VALUES.filter((v) => v !== null)) })] : []),
    ...(strictFields.length > 0 ? [fc.record({ kind: fc.constant('remove' as const), field: fc.constantFrom(...strictFields) })] : []),
    fc.record({ kind: fc.constant('unknown' as const), field: fc.constantFrom(...objects), value: fc.constantFrom(...HOSTILE_VALUES.slice(0, 5)) }),
  ];
  const mutation = fc.oneof(...choices);
  const samples = fc.sample(fc.array(mutation, { minLength: 1, maxLength: 3 }), { seed: options.seed, numRuns: options.runs });
  return samples.map((mutations, index) => {
    const body = structuredClone(endpoint.valid);
    for (const m of mutations) {
      if (m.kind === 'replace') set(body, m.field, structuredClone(m.value));
      else if (m.kind === 'remove') remove(body, m.field);
      else {
        const target = m.field ? get(body, m.field) : body;
        if (isObject(target)) target.unexpectedProperty = structuredClone(m.value);
        else set(body, 'unexpectedProperty', structuredClone(m.value));
      }
    }
    const label = `seed ${options.seed} #${index}: ${mutations.map((m) => `${m.kind} ${m.field || '(root)'}${'value' in m ? ` = ${JSON.stringify(m.value)?.slice(0, 40)}` : ''}`).join(', ')}`;
    return { label, method: endpoint.method, path: endpoint.path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), mustRefuse: true };
  });
}

/** Hostile path segments and query values for GET/DELETE routes (`{}` in the template is replaced). */
export const HOSTILE_URL_PARTS: readonly string[] = [
  '%00',
  `${M}%00`,
  `${M}%ED%A0%80`,
  `%ED%B0%80${M}`,
  '%',
  `%zz${M}`,
  `%C0%AF${M}`,
  `${M}${'x'.repeat(400)}`,
  '..%2F..%2Fetc%2Fpasswd',
  `%F0%9F%92%A9${M}`,
];

export function urlCases(method: string, template: string, mustRefuse: boolean): MalformedRequest[] {
  return HOSTILE_URL_PARTS.map((part) => ({ label: `${method} ${template} with ${part.slice(0, 30)}`, method, path: template.replace('{}', part), mustRefuse }));
}

/** Headers over Node's 16 KiB limit (431) and a bad Content-Length. */
export function headerCases(method: string, path: string): MalformedRequest[] {
  return [
    { label: 'header block over 16 KiB', method, path, headers: { 'x-junk': `${M}${'h'.repeat(20_000)}` }, mustRefuse: true },
    { label: 'authorization header over 16 KiB', method, path, headers: { authorization: `Bearer ${M}${'k'.repeat(20_000)}` }, mustRefuse: true },
  ];
}

export interface Outcome {
  request: MalformedRequest;
  status: number;
  text: string;
}

/** Sends each request with the API key (unless it sets its own authorization) and collects what came back. */
export async function sendAll(baseUrl: string, apiKey: string, requests: MalformedRequest[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (const request of requests) {
    const headers = { authorization: `Bearer ${apiKey}`, ...request.headers };
    try {
      const response = await fetch(`${baseUrl}${request.path}`, { method: request.method, headers, body: request.body });
      outcomes.push({ request, status: response.status, text: await response.text() });
    } catch (error) {
      outcomes.push({ request, status: -1, text: `fetch failed: ${(error as Error).message}` });
    }
  }
  return outcomes;
}

/**
 * What is wrong with an outcome, or undefined: a 5xx or a dropped connection, a refusal that is not
 * `{code, message}` JSON, an echoed hostile value, or a malformed body that was accepted.
 */
export function problemWith(outcome: Outcome): string | undefined {
  const { status, text, request } = outcome;
  const where = `${request.label} → ${status} ${text.slice(0, 200)}`;
  if (status < 0 || status >= 500) return `server error: ${where}`;
  if (text.includes(ECHO_MARKER)) return `input echoed: ${where}`;
  if (request.mustRefuse && (status < 400 || status >= 500)) return `accepted: ${where}`;
  if (status >= 400) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return `refusal is not JSON: ${where}`;
    }
    const { code, message } = (body ?? {}) as { code?: unknown; message?: unknown };
    if (typeof code !== 'string' || typeof message !== 'string') return `refusal is not {code, message}: ${where}`;
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function get(root: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (isObject(node) || Array.isArray(node) ? (node as Record<string, unknown>)[key] : undefined), root);
}

function set(root: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  const parent = get(root, keys.slice(0, -1).join('.')) ?? root;
  if (isObject(parent) || Array.isArray(parent)) (parent as Record<string, unknown>)[keys[keys.length - 1]] = value;
}

function remove(root: Record<string, unknown>, path: string): void {
  const keys = path.split('.');
  const parent = keys.length === 1 ? root : get(root, keys.slice(0, -1).join('.'));
  if (isObject(parent)) delete parent[keys[keys.length - 1]];
}

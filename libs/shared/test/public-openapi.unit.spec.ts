import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type { OpenAPIObject, ReferenceObject, RequestBodyObject, ResponseObject, SecuritySchemeObject } from '@nestjs/swagger';
import { errorCodesOf, operationsOf } from '../src/openapi';

const root = resolve(__dirname, '../../..');
const document = JSON.parse(readFileSync(resolve(root, 'docs/openapi.json'), 'utf8')) as OpenAPIObject;
const operations = operationsOf(document);
const SERVICES = ['usage-ingest', 'ledger', 'subscription-cycle', 'notification'];

/** docs/openapi.json: the merged public API (scripts/openapi.script.ts), complete and up to date. */
describe('the public OpenAPI document', () => {
  it('is what `npm run openapi` writes from the code today (run it and commit docs/openapi.json when this fails)', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register', 'scripts/openapi.script.ts', '--check'], {
      cwd: root,
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' },
    });
    expect(stdout).toContain('up to date');
  }, 120_000);

  it("holds the four services' routes, each tagged with its service, under a unique, meaningful operationId", () => {
    expect(operations.length).toBeGreaterThanOrEqual(17);
    const ids = operations.map(({ operation }) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { path, method, operation } of operations) {
      expect({ route: `${method} ${path}`, id: operation.operationId }).toEqual({ route: `${method} ${path}`, id: expect.stringMatching(/^[a-z]+[A-Z][A-Za-z]*$|^authorize$/) });
      expect(operation.tags).toHaveLength(1);
      expect(SERVICES).toContain(operation.tags?.[0]);
    }
    expect(new Set(operations.map(({ operation }) => operation.tags?.[0]))).toEqual(new Set(SERVICES));
  });

  it('describes the API key as it is: an opaque bearer key, not a JWT, required by every route', () => {
    const scheme = document.components?.securitySchemes?.bearer as SecuritySchemeObject;
    expect(scheme).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(scheme.bearerFormat).toBeUndefined();
    for (const { operation } of operations) expect(operation.security).toEqual([{ bearer: [] }]);
  });

  it('gives every route a schema for its body and for every success, and the one error shape with its codes for every error status', () => {
    for (const { path, method, operation } of operations) {
      const route = `${method.toUpperCase()} ${path}`;
      const body = operation.requestBody as RequestBodyObject | undefined;
      if (method === 'post' || method === 'put') expect({ route, schema: body?.content['application/json']?.schema }).toEqual({ route, schema: expect.any(Object) });
      const statuses = Object.keys(operation.responses).map(Number);
      expect({ route, success: statuses.some((s) => s >= 200 && s < 300) }).toEqual({ route, success: true });
      for (const status of statuses) {
        const response = operation.responses[status] as ResponseObject | ReferenceObject;
        expect('$ref' in response).toBe(false);
        const content = (response as ResponseObject).content ?? {};
        if (status < 400) {
          expect({ route, status, schemas: Object.values(content).map((media) => media.schema !== undefined) }).toEqual({ route, status, schemas: [true] });
        } else {
          expect({ route, status, codes: errorCodesOf(response as ResponseObject)?.length }).toEqual({ route, status, codes: expect.any(Number) });
        }
      }
      for (const status of [400, 401, 403, 431, 503]) expect({ route, status, documented: status in operation.responses }).toEqual({ route, status, documented: true });
      expect(errorCodesOf(operation.responses[503] as ResponseObject)).toContain('DEPENDENCY_UNAVAILABLE');
      expect((operation.responses[503] as ResponseObject).headers).toHaveProperty('Retry-After');
    }
  });

  it('states every request field of the usage event with its limits, and amounts as bounded decimal strings', () => {
    const schemas = document.components?.schemas as Record<string, { properties: Record<string, { pattern?: string; type?: string }>; required?: string[] }>;
    expect(Object.keys(schemas.UsageEventRequest.properties).sort()).toEqual(
      ['accountId', 'feature', 'holdId', 'id', 'images', 'inputTokens', 'metadata', 'model', 'occurredAt', 'outputTokens', 'resolution', 'responses', 'videoSeconds'],
    );
    expect(schemas.UsageEventRequest.required?.sort()).toEqual(['accountId', 'feature', 'id', 'occurredAt']);
    for (const [name, field] of [['GrantRequest', 'amount'], ['PurchaseRequest', 'amount'], ['AuthorizationRequest', 'amount']]) {
      expect(schemas[name].properties[field]).toMatchObject({ type: 'string', pattern: expect.stringContaining('1000000000') });
    }
  });
});

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import type { OpenAPIObject } from '@nestjs/swagger';
import { OpenApiContract } from './openapi-contract.harness';
import { fuzzRequests } from './openapi-fuzz.fixtures';

const document = JSON.parse(readFileSync(resolve(__dirname, '../../../../docs/openapi.json'), 'utf8')) as OpenAPIObject;
const contract = new OpenApiContract(document);

describe('fuzzRequests, generated from the public document', () => {
  it.each(contract.operations.map((operation) => [operation.operationId, operation] as const))('%s: valid requests the document accepts, and mutations of every kind', (_id, operation) => {
    const samples = fc.sample(fuzzRequests(operation, { contract, apiKey: 'k', pathValues: { accountId: 'acct-1' }, bodyLimit: 1024 }), { numRuns: 300, seed: 7 });
    const prefix = operation.template.split('{')[0];
    for (const request of samples) {
      expect(request.method).toBe(operation.method.toUpperCase());
      expect(request.path.startsWith(prefix)).toBe(true);
      if (request.label === 'valid') {
        expect(request.mustRefuse).toBe(false);
        expect(request.headers.authorization).toBe('Bearer k');
        if (operation.bodySchema) expect(contract.accepts(operation.bodySchema, JSON.parse(String(request.body)))).toBe(true);
      }
      if (/^(authorization|header block|content type|empty JSON|null body)/.test(request.label)) expect(request.mustRefuse).toBe(true);
    }
    const labels = samples.map((request) => request.label);
    expect(labels).toContain('valid');
    expect(labels.some((label) => label.startsWith('authorization'))).toBe(operation.secured);
    expect(labels.some((label) => label.startsWith('header block'))).toBe(true);
    if (operation.bodySchema) {
      expect(labels.some((label) => /^(replace|remove|add) /.test(label))).toBe(true);
      expect(labels.some((label) => label.startsWith('content type'))).toBe(true);
    }
    for (const name of operation.pathParameters) expect(labels.some((label) => label.startsWith(`${name} = `))).toBe(true);
  });
});

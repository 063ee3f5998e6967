import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import type { OpenAPIObject } from '@nestjs/swagger';
import { arbitraryFor, type JsonSchema } from './json-schema-arbitrary.fixtures';
import { OpenApiContract, toJsonSchema } from './openapi-contract.harness';

const document = JSON.parse(readFileSync(resolve(__dirname, '../../../../docs/openapi.json'), 'utf8')) as OpenAPIObject;
const contract = new OpenApiContract(document);
const schemas = Object.keys(document.components?.schemas ?? {});

describe('arbitraryFor', () => {
  const ajv = new Ajv({ strict: false });
  addFormats(ajv);
  ajv.addSchema({ $id: 'openapi', components: toJsonSchema(document.components) as object });

  it.each(schemas)('generates only values the public document says %s accepts', (name) => {
    const schema = contract.resolve({ $ref: `#/components/schemas/${name}` }) as JsonSchema;
    const validate = ajv.compile({ $ref: `openapi#/components/schemas/${name}` });
    fc.assert(
      fc.property(arbitraryFor(schema), (value) => {
        const valid = validate(value);
        expect({ valid, errors: validate.errors ?? null }).toEqual({ valid: true, errors: null });
      }),
      { numRuns: 150 },
    );
  });

  it('keeps to bounds, patterns with lookaheads, enums, nullables and required keys', () => {
    const schema: JsonSchema = {
      type: 'object',
      required: ['amount', 'kind'],
      properties: {
        amount: { type: 'string', pattern: '^(?=.*[1-9])\\d{1,3}$' },
        kind: { enum: ['a', 'b'] },
        count: { type: 'integer', minimum: 1, maximum: 3 },
        note: { type: 'string', nullable: true, maxLength: 5 },
        tags: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 2 },
      },
    };
    fc.assert(
      fc.property(arbitraryFor(schema), (value) => {
        const v = value as Record<string, unknown>;
        expect(v.amount).toMatch(/^(?=.*[1-9])\d{1,3}$/);
        expect(['a', 'b']).toContain(v.kind);
        if ('count' in v) expect([1, 2, 3]).toContain(v.count);
        if ('note' in v && v.note !== null) expect((v.note as string).length).toBeLessThanOrEqual(5);
        if ('tags' in v) expect((v.tags as string[]).length).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 300 },
    );
  });
});

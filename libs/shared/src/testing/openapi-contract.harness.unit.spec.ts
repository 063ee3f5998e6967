import type { OpenAPIObject } from '@nestjs/swagger';
import { errorResponse } from '../openapi/api-errors.decorator';
import { OpenApiContract, pathValue } from './openapi-contract.harness';

const document = {
  openapi: '3.0.0',
  info: { title: 't', version: '1' },
  paths: {
    '/v1/things/{thingId}': {
      get: {
        operationId: 'getThing',
        responses: {
          200: { description: 'ok', content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } },
          404: errorResponse(404, ['THING_NOT_FOUND']),
          503: errorResponse(503, ['DEPENDENCY_UNAVAILABLE']),
        },
      },
    },
  },
  components: {
    schemas: {
      Thing: { type: 'object', required: ['id', 'owner'], properties: { id: { type: 'string' }, owner: { type: 'string', nullable: true }, at: { type: 'string', format: 'date-time' } } },
      ErrorBodyDto: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
    },
  },
} as unknown as OpenAPIObject;

const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => ({
  status,
  headers: new Headers({ 'content-type': 'application/json; charset=utf-8', ...headers }),
  text: typeof body === 'string' ? body : JSON.stringify(body),
});

describe('OpenApiContract', () => {
  const contract = new OpenApiContract(document);
  const [getThing] = contract.operations;

  it('accepts what the document describes, nullable fields included', () => {
    expect(contract.problemWith(getThing, answer(200, { id: 'a', owner: null, at: '2026-01-01T00:00:00Z' }))).toBeUndefined();
    expect(contract.problemWith(getThing, answer(404, { code: 'THING_NOT_FOUND', message: 'no' }))).toBeUndefined();
    expect(contract.problemWith(getThing, answer(503, { code: 'DEPENDENCY_UNAVAILABLE', message: 'later' }, { 'retry-after': '2' }))).toBeUndefined();
  });

  it.each([
    ['an undocumented status', answer(500, { code: 'INTERNAL', message: 'x' }), /undocumented status/],
    ['a body its schema refuses', answer(200, { id: 1, owner: 'x' }), /does not match/],
    ['a missing required field', answer(200, { id: 'a' }), /does not match/],
    ['a malformed date-time', answer(200, { id: 'a', owner: null, at: 'yesterday' }), /does not match/],
    ['an error code the status does not list', answer(404, { code: 'NOT_FOUND', message: 'no' }), /does not match/],
    ['an error not in the one error shape', answer(404, { error: 'no' }), /does not match/],
    ['a 503 without Retry-After', answer(503, { code: 'DEPENDENCY_UNAVAILABLE', message: 'later' }), /Retry-After/],
    ['another content type', { status: 200, headers: new Headers({ 'content-type': 'text/html' }), text: '<p>' }, /content type/],
    ['a body that is not JSON', answer(200, '{"id":'), /not JSON/],
  ])('names %s', (_name, exchange, problem) => {
    expect(contract.problemWith(getThing, exchange)).toMatch(problem);
  });

  it('finds path parameters and body schemas, and reads a parameter back from a concrete path', () => {
    expect(getThing).toMatchObject({ operationId: 'getThing', pathParameters: ['thingId'], secured: false, bodySchema: undefined });
    expect(pathValue(getThing, '/v1/things/t%201?x=1', 'thingId')).toBe('t 1');
  });
});

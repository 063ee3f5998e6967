import type { DynamicModule, INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject, type OperationObject, type ResponseObject } from '@nestjs/swagger';
import { errorCodesOf, errorResponse } from './api-errors.decorator';
import { ErrorBodyDto, FieldIssueDto, InsufficientCreditsBodyDto } from './error-body.dto';

/** The security scheme every authenticated route names (`@ApiBearerAuth()` uses this name). */
export const API_KEY_SCHEME = 'bearer';

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** Every operation of a document, with its path template and method. */
export function operationsOf(document: OpenAPIObject): { path: string; method: HttpMethod; operation: OperationObject }[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    HTTP_METHODS.filter((method) => item[method]).map((method) => ({ path, method, operation: item[method] as OperationObject })),
  );
}

/**
 * A service's OpenAPI document: its routes' decorators (DTO schemas, `@ApiErrors`, operation ids), the API-key
 * scheme as it really is (an opaque bearer key, not a JWT), every operation tagged with the service, and the error
 * responses every route shares (see completeErrorResponses).
 */
export function buildOpenApiDocument(app: INestApplication, options: { service: string; title: string }): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle(options.title)
    .setVersion('1')
    .setDescription('Every error is `{code, message, details?}` with a stable `code`; amounts are decimal strings of credits, never JSON numbers.')
    .addSecurity(API_KEY_SCHEME, {
      type: 'http',
      scheme: 'bearer',
      description:
        'An opaque service API key, `Authorization: Bearer <key>`; each key has scopes, one per job (usage:write, holds:write, accounts:read, purchases:write, grants:write, corrections:write, ' +
        'subscriptions:write, notifications:write, portal:mint, admin; every operation names its own in `x-required-scope`, admin satisfies all), ' +
        'and may be limited to account namespaces (account-id prefixes): outside them 403 ACCOUNT_OUTSIDE_NAMESPACE. ' +
        'The read routes of one account (balance, its stream, transactions, usage, export) and GET /v1/portal/session also take a portal token (a JWT minted by POST /v1/accounts/{accountId}/portal-tokens) for that account.',
    })
    .build();
  const document = SwaggerModule.createDocument(app, config, {
    extraModels: [ErrorBodyDto, FieldIssueDto, InsufficientCreditsBodyDto],
    // Each route names its operationId (`@ApiOperation`); the method name is the fallback.
    operationIdFactory: (_controller, method) => method,
  });
  for (const { operation } of operationsOf(document)) {
    operation.tags = [options.service];
    // The scope a route requires (RequireScope's `x-required-scope`), first in its description for readers of /docs.
    const scope = (operation as OperationObject & { 'x-required-scope'?: string })['x-required-scope'];
    if (scope) operation.description = `Requires scope \`${scope}\` (or \`admin\`).${operation.description ? ` ${operation.description}` : ''}`;
  }
  document.tags = [{ name: options.service, description: options.title }];
  return completeErrorResponses(document);
}

/**
 * Adds to every operation (the health probes: only 400 and 431, they answer their own shape) the errors the HTTP platform
 * answers for any route, in the one error shape, merging codes into those the route declares: a malformed URL
 * (400), 401/403 when it takes an API key, a route that no longer matches or a too long path parameter (404, 414),
 * a body that is not JSON, too large or of another media type (400, 413, 415), headers over 16 KiB (431), a caller
 * over its rate limit (429 with Retry-After) and a dependency outage (503 with Retry-After).
 */
export function completeErrorResponses(document: OpenAPIObject): OpenAPIObject {
  for (const { path, method, operation } of operationsOf(document)) {
    const add = (status: number, codes: string[]) => {
      const existing = operation.responses[status] as ResponseObject | undefined;
      operation.responses[status] = errorResponse(status, [...(errorCodesOf(existing) ?? []), ...codes]);
    };
    if (path.startsWith('/health')) {
      // The probes answer their own shape (Terminus's, 503 included); only the platform's refusals are added.
      add(400, ['INVALID_URL', 'BAD_REQUEST']);
      add(431, ['HEADERS_TOO_LARGE']);
      continue;
    }
    const takesBody = method === 'post' || method === 'put' || method === 'patch' || method === 'delete';
    const hasPathParameters = path.includes('{');
    const hasInput = hasPathParameters || takesBody || (operation.parameters ?? []).length > 0;
    add(400, ['INVALID_URL', 'BAD_REQUEST', ...(hasInput ? ['VALIDATION_FAILED'] : []), ...(takesBody ? ['INVALID_JSON'] : [])]);
    if ((operation.security ?? []).length > 0) {
      add(401, ['UNAUTHENTICATED']);
      // A key limited to account namespaces is refused any other account a route names (ApiKeyGuard).
      const namesAccount = path.includes('{accountId}') || (operation.parameters ?? []).some((p) => 'name' in p && p.name === 'accountId');
      add(403, ['FORBIDDEN', ...(namesAccount ? ['ACCOUNT_OUTSIDE_NAMESPACE'] : [])]);
    }
    if (hasPathParameters) {
      add(404, ['NOT_FOUND']);
      add(414, ['URL_TOO_LONG']);
    }
    if (takesBody) {
      add(413, ['PAYLOAD_TOO_LARGE']);
      add(415, ['UNSUPPORTED_MEDIA_TYPE']);
    }
    add(431, ['HEADERS_TOO_LARGE']);
    // Rate limits (README "Security"): per API key, per portal token's account, per address without a key.
    add(429, ['RATE_LIMITED']);
    add(503, ['DEPENDENCY_UNAVAILABLE']);
  }
  return document;
}

/**
 * A service's document without starting it: Nest's preview mode resolves the module graph and routes but
 * instantiates no provider, so nothing connects to PostgreSQL or Kafka (the config only has to validate).
 */
export async function previewOpenApiDocument(module: Type<unknown> | DynamicModule, options: { service: string; title: string }): Promise<OpenAPIObject> {
  const app = await NestFactory.create(module, new FastifyAdapter(), { preview: true, logger: false, abortOnError: false });
  try {
    return buildOpenApiDocument(app, options);
  } finally {
    await app.close();
  }
}

/**
 * One document for the public API: every service's paths (not their health probes, which each service answers
 * for itself), components and tags. Two services declaring the same route, or the same schema name with another
 * shape, is an error, not a silent overwrite.
 */
export function mergeOpenApiDocuments(info: OpenAPIObject['info'], documents: OpenAPIObject[]): OpenAPIObject {
  const paths: OpenAPIObject['paths'] = {};
  const schemas: Record<string, unknown> = {};
  const tags: NonNullable<OpenAPIObject['tags']> = [];
  for (const document of documents) {
    for (const [path, item] of Object.entries(document.paths)) {
      if (path.startsWith('/health')) continue;
      for (const method of HTTP_METHODS) {
        if (!item[method]) continue;
        if (paths[path]?.[method]) throw new Error(`two services declare ${method.toUpperCase()} ${path}`);
        paths[path] = { ...paths[path], [method]: item[method] };
      }
    }
    for (const [name, schema] of Object.entries(document.components?.schemas ?? {})) {
      if (name in schemas && JSON.stringify(schemas[name]) !== JSON.stringify(schema)) throw new Error(`schema ${name} differs between services`);
      schemas[name] = schema;
    }
    tags.push(...(document.tags ?? []));
  }
  const sorted = <T>(record: Record<string, T>) => Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
  const merged: OpenAPIObject = {
    openapi: documents[0]?.openapi ?? '3.0.0',
    info,
    paths: sorted(paths),
    tags,
    components: { securitySchemes: documents[0]?.components?.securitySchemes ?? {}, schemas: sorted(schemas) as NonNullable<OpenAPIObject['components']>['schemas'] },
  };
  return merged;
}

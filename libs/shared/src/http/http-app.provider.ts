import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ArgumentMetadata, type DynamicModule, ShutdownSignal, ValidationPipe, type Type } from '@nestjs/common';
import { NestFactory, Reflector } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { SwaggerModule } from '@nestjs/swagger';
import { parse as parseBytes } from 'bytes';
import type { ClassConstructor } from 'class-transformer';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ContractViolation, findUnsafeJson, flattenValidationErrors, validateInto } from '@tally/contracts';
import type { CommonConfig } from '../config/common.config';
import { redactConfig } from '../config/env-config.parser';
import type { ErrorBody } from '../errors/app.errors';
import { HttpErrorFilter, platformErrorBody, type HttpStatusByCode } from '../errors/http-error.filter';
import { createLogger, type Logger } from '../logging/pino.logger';
import { PinoNestLogger } from '../logging/pino-nest.logger';
import { buildOpenApiDocument } from '../openapi/openapi-document.view';
import fastifyCors from '@fastify/cors';
import { ApiKeyGuard, AUTH_STATUS_BY_CODE, bearerOf, type PortalTokenCheck } from './api-key.guard';
import { ApiKeyRegistry } from './api-keys.config';
import { enforce, isUnlimitedPath, RATE_LIMIT_STATUS_BY_CODE, RateLimitedError, RateLimitGuard } from './rate-limit.guard';
import { RateLimiter } from './rate-limit.model';
import { registerRequestContext } from './request-context.logger';
import { startTracing, stopTracing } from '../telemetry/tracing.provider';

export interface HttpAppOptions {
  service: string;
  title: string;
  config: CommonConfig;
  statusByCode: HttpStatusByCode;
  /** Largest JSON body accepted, e.g. '1mb' (parsed by `bytes`); a larger body gets 413 PAYLOAD_TOO_LARGE. */
  bodyLimit?: string;
  /** Bind address; defaults to all interfaces. */
  host?: string;
  listen?: boolean;
  /**
   * Nest microservices to connect (`app.connectMicroservice`), e.g. `[{ strategy: app.get(KafkaBatchTransport) }]`
   * from libs/kafka; started before the HTTP listener, so their `listen()` must return at once (joining Kafka groups
   * happens in the background). Not inheriting the app's global guards, pipes and filters (those are HTTP's).
   */
  microservices?: (app: NestFastifyApplication) => object[];
  /**
   * Fastify plugins of the service, registered before Nest sets up its routes (after CORS), e.g. the ledger's credits
   * page with @fastify/static. Given the app and the service's logger.
   */
  plugins?: (app: NestFastifyApplication, logger: Logger) => Promise<void>;
  /** Portal tokens (the ledger): accepted on routes marked `@PortalReadable()`, checked with this codec and clock. */
  portalTokens?: PortalTokenCheck;
  /**
   * Origins (`https://app.example`) whose pages may call the API from a browser (CORS): GET with an Authorization
   * header, Content-Disposition and X-Request-Id readable. None by default: no cross-origin access at all.
   */
  corsOrigins?: readonly string[];
}

/**
 * Creates and starts a service's HTTP app the same way for all four services: structured logs, API keys with
 * scopes, rate limits per caller, security headers, DTO validation with field errors, one error filter, OpenAPI at
 * /docs (DOCS_ACCESS), graceful shutdown on SIGTERM.
 *
 * The HTTP platform is Fastify: on this 2-core machine a Nest route costs about 40% less CPU per request on it
 * than on Express (measured in the session notes of issue 6), which is what the authorization latency needs.
 */
export async function bootstrapHttpApp(module: Type<unknown> | DynamicModule, options: HttpAppOptions): Promise<NestFastifyApplication> {
  // Before anything logs or listens: the context every log line reads, and the tracer (README "Tracing").
  startTracing(options.service, options.config);
  const logger = createLogger(options.service, options.config.LOG_LEVEL);
  logger.info({ config: redactConfig(options.config) }, 'starting');
  const bodyLimit = parseBytes(options.bodyLimit ?? '1mb');
  if (bodyLimit === null || bodyLimit <= 0) throw new Error(`bodyLimit must be a size such as '1mb', got ${options.bodyLimit}`);
  // Fastify's own JSON parser (with its prototype-poisoning guard) and nothing else: no form or text bodies.
  // Errors Fastify and Node answer before any route (bad URL, header block too large) leave in Tally's shape too;
  // a path parameter may be as long as the longest id (128 characters).
  const adapter = new FastifyAdapter({
    bodyLimit,
    routerOptions: { maxParamLength: 256 },
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
    trustProxy: options.config.trustProxy(),
  });
  adapter.getInstance().removeContentTypeParser('text/plain');
  registerRequestContext(adapter.getInstance(), logger);
  registerSecurityHeaders(adapter.getInstance(), options.config);
  const keys = ApiKeyRegistry.fromJson(options.config.API_KEYS);
  const limiter = options.config.RATE_LIMIT_ENABLED ? new RateLimiter(options.config.rateLimitOf()) : undefined;
  registerDocsAccess(adapter.getInstance(), options.config.docsAccess(), keys, limiter);
  // Spans still buffered leave before the process does (after Nest's own shutdown hooks closed the server).
  adapter.getInstance().addHook('onClose', async () => stopTracing());
  // abortOnError off: a module that cannot be built throws to the caller (every main logs it and exits 1; a test fails
  // where Nest's own abort would end the whole test process, every other test file in it included).
  const app = await NestFactory.create<NestFastifyApplication>(module, adapter, { logger: new PinoNestLogger(logger), bodyParser: false, abortOnError: false });
  app.useGlobalPipes(
    new EdgeValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      exceptionFactory: (errors) => new ContractViolation('INVALID_PAYLOAD', flattenValidationErrors(errors)),
    }),
  );
  app.useGlobalFilters(new HttpErrorFilter({ ...AUTH_STATUS_BY_CODE, ...RATE_LIMIT_STATUS_BY_CODE, ...options.statusByCode }));
  const authenticate = new ApiKeyGuard(app.get(Reflector), keys, options.portalTokens);
  app.useGlobalGuards(limiter ? new RateLimitGuard(authenticate, limiter, (bearer) => keys.find(bearer)?.name) : authenticate);
  if (options.corsOrigins?.length) {
    // An onRequest hook (before the guard, so a preflight needs no key); streamed answers copy its headers (hijackReply).
    await app.register(fastifyCors, {
      origin: [...options.corsOrigins],
      methods: ['GET'],
      allowedHeaders: ['Authorization'],
      exposedHeaders: ['Content-Disposition', 'X-Request-Id'],
      maxAge: 600,
    });
  }
  await options.plugins?.(app, logger);
  // Each service serves its own document (JSON at /docs-json); docs/openapi.json merges the four (scripts/openapi.script.ts).
  if (options.config.docsAccess() !== 'off') {
    const document = buildOpenApiDocument(app, { service: options.service, title: options.title });
    SwaggerModule.setup('docs', app, document);
  }
  app.enableShutdownHooks(shutdownSignals(process.execArgv, options.config.NODE_OPTIONS));
  for (const microservice of options.microservices?.(app) ?? []) app.connectMicroservice(microservice);
  if (options.listen !== false) {
    // Init hooks first (as when a worker started in onApplicationBootstrap), then the consumers, then HTTP. A boot
    // that fails closes what it opened (pools, Kafka clients, timers) before the error leaves.
    try {
      await app.init();
      await app.startAllMicroservices();
      await app.listen(options.config.PORT, options.host ?? '0.0.0.0');
    } catch (error) {
      logger.error({ err: error }, 'boot failed');
      await app.close().catch((closing: unknown) => logger.warn({ err: closing }, 'closing after the failed boot failed too'));
      throw error;
    }
    logger.info({ port: options.config.PORT }, 'listening');
  }
  return app;
}

/**
 * The path a request is routed by: the matched route's template (Fastify decodes the URL before it routes, so
 * `/%64ocs-json` is `/docs-json`), else the decoded path (a request no route matches). Path rules (docs access,
 * headers) must use this, never the raw URL.
 */
function routedPath(request: FastifyRequest): string {
  const route = request.routeOptions.url;
  if (route !== undefined) return route;
  const raw = request.url.split('?')[0] ?? '';
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The OpenAPI page and its document (Swagger UI's assets under /docs/ included). */
const isDocsPath = (path: string) => path === '/docs' || path.startsWith('/docs/') || path.startsWith('/docs-');

/** The credits page (the ledger's, served by @fastify/static): framed by products, with its own CSP. */
const isPortalPagePath = (path: string) => path === '/portal' || path.startsWith('/portal/');

/** What a JSON API may load and who may frame it: nothing and no one. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * Security headers on every answer (an onRequest hook, so errors, streams and Fastify's own answers carry them):
 * `nosniff`, no referrer, HSTS (HSTS_MAX_AGE_SECONDS; 0 for none), and, except on the credits page (framed by
 * products, its own CSP: apps/ledger/src/portal-page), no framing and a CSP that lets a JSON answer load nothing;
 * the OpenAPI page (Swagger UI runs its own scripts and styles) gets no CSP.
 *
 * Not @fastify/helmet: the three kinds of answer need three policies, chosen by path, and helmet's per-route
 * settings cannot reach the routes @fastify/static and Swagger register; these few fixed headers are the part of
 * helmet's defaults that applies to an API.
 */
function registerSecurityHeaders(fastify: FastifyInstance, config: CommonConfig): void {
  const hsts = config.HSTS_MAX_AGE_SECONDS > 0 ? `max-age=${config.HSTS_MAX_AGE_SECONDS}; includeSubDomains` : undefined;
  fastify.addHook('onRequest', (request, reply, done) => {
    const path = routedPath(request);
    void reply.header('X-Content-Type-Options', 'nosniff');
    void reply.header('Referrer-Policy', 'no-referrer');
    if (hsts) void reply.header('Strict-Transport-Security', hsts);
    if (!isPortalPagePath(path)) {
      void reply.header('X-Frame-Options', 'DENY');
      if (!isDocsPath(path)) void reply.header('Content-Security-Policy', API_CSP);
    }
    done();
  });
}

/**
 * DOCS_ACCESS=key: /docs and /docs-json answer only a request with a valid API key (any scope); `public` lets anyone
 * read them (`off` does not serve them at all). Either way the page counts against its caller's rate limit (the key,
 * or the address), since Nest's guards never see these Fastify routes.
 */
function registerDocsAccess(fastify: FastifyInstance, access: 'public' | 'key' | 'off', keys: ApiKeyRegistry, limiter: RateLimiter | undefined): void {
  if (access === 'off') return;
  fastify.addHook('onRequest', (request, reply, done) => {
    const path = routedPath(request);
    if (!isDocsPath(path) || isUnlimitedPath(path)) return done();
    const bearer = bearerOf(request);
    const key = bearer === undefined ? undefined : keys.find(bearer);
    try {
      if (limiter) enforce(limiter.take(key ? `key:${key.name}` : `ip:${request.ip}`), reply);
    } catch (error) {
      if (!(error instanceof RateLimitedError)) throw error;
      void reply.code(429).send({ code: error.code, message: error.message, details: error.details });
      return;
    }
    if (access === 'key' && !key) {
      void reply.code(401).send({ code: 'UNAUTHENTICATED', message: 'The API documentation needs a valid service API key (Authorization: Bearer <key>).' });
      return;
    }
    if (key) request.apiKeyName = key.name;
    done();
  });
}

/**
 * Takes the response over from Fastify, for a handler that writes the Node response itself (an event stream, a CSV
 * download), keeping the headers hooks already set on the reply (X-Request-Id, CORS), which Fastify would only have
 * written when it sent the answer itself.
 */
export function hijackReply(reply: FastifyReply): FastifyReply['raw'] {
  reply.hijack();
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) reply.raw.setHeader(name, value);
  }
  return reply.raw;
}

/**
 * Nest's ValidationPipe, plus what it lets through for every body, query and path parameter: a body that is not a
 * JSON object (Nest would turn null into `{}`), nesting deep enough to overflow class-transformer's recursion, and
 * text PostgreSQL cannot store (NUL, unpaired surrogates). Runs before the DTO (or the handler, for `unknown` bodies).
 *
 * A DTO class given an object (every body, query and params DTO) is built and checked by `validateInto`, the
 * compiled paths the Kafka consumers use (@tally/contracts), under the same options (whitelist, forbidNonWhitelisted,
 * forbidUnknownValues, no implicit conversion) and with the same field errors (class-validator still explains a
 * refusal); Nest's pipe looks the class's metadata up again on every request, about a tenth of an authorization's
 * CPU. Anything else (path parameters typed string, `unknown` bodies, custom decorators) goes through Nest's pipe.
 */
class EdgeValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && (typeof value !== 'object' || value === null || Array.isArray(value))) {
      throw new ContractViolation('INVALID_PAYLOAD', [{ field: '(root)', reason: 'the body must be a JSON object' }]);
    }
    if (metadata.type !== 'custom') {
      const unsafe = findUnsafeJson(value, metadata.type === 'body' ? '' : (metadata.data ?? ''));
      if (unsafe) throw new ContractViolation('INVALID_PAYLOAD', [unsafe]);
    }
    if (metadata.metatype && this.toValidate(metadata) && typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return validateInto(metadata.metatype as ClassConstructor<object>, value, 'INVALID_PAYLOAD', '', { checkedSafe: true });
    }
    return super.transform(value, metadata);
  }
}

const FRAMEWORK_ERRORS: Readonly<Record<string, [number, ErrorBody]>> = {
  FST_ERR_BAD_URL: [400, { code: 'INVALID_URL', message: 'The request URL is not valid (bad percent-encoding).' }],
  FST_ERR_MAX_PARAM_LENGTH: [414, platformErrorBody(414)],
};

/** Fastify's routing errors (before Nest sees the request), in the same `{code, message}` shape, quoting nothing. */
function answerFrameworkError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const [status, body] = FRAMEWORK_ERRORS[error.code] ?? [400, { code: 'BAD_REQUEST', message: 'The request is not valid.' }];
  void reply.code(status).send(body);
}

/** Node's HTTP parser errors (header block over 16 KiB, malformed request line): answered on the socket, then closed. */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const body = JSON.stringify(status === 400 ? { code: 'BAD_REQUEST', message: 'The request is not valid HTTP.' } : platformErrorBody(status));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/**
 * The signals that shut a service down gracefully: Nest's (SIGTERM, SIGINT, SIGHUP, SIGUSR2 and the others of
 * `ShutdownSignal`), less any Node was told to use for a diagnostic (`--heapsnapshot-signal=SIGUSR2`, as Node's docs
 * show it; `--report-on-signal`, SIGUSR2 unless `--report-signal` names another): with Nest's default list, an
 * operator's heap snapshot or diagnostic report stopped the service it was meant to examine.
 */
export function shutdownSignals(execArgv: readonly string[], nodeOptions = ''): ShutdownSignal[] {
  const flags = [...execArgv, ...nodeOptions.split(/\s+/)];
  // Node takes a flag's value after `=` or as the next argument (`--heapsnapshot-signal SIGUSR2`).
  const value = (flag: string) => {
    const at = flags.findIndex((f) => f === flag || f.startsWith(`${flag}=`));
    const given = at < 0 ? undefined : flags[at] === flag ? flags[at + 1] : flags[at].slice(flag.length + 1);
    return given?.toUpperCase();
  };
  const diagnostic = new Set<string>();
  const snapshot = value('--heapsnapshot-signal');
  if (snapshot) diagnostic.add(snapshot);
  if (flags.includes('--report-on-signal')) diagnostic.add(value('--report-signal') ?? 'SIGUSR2');
  return Object.values(ShutdownSignal).filter((signal) => !diagnostic.has(signal));
}

import { randomUUID } from 'node:crypto';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { REQUEST_ID_HEADER, isValidRequestId, withRequestId } from '../telemetry/trace-context.codec';
import { startSpan } from '../telemetry/tracing.provider';

const UNTRACED_ROUTES = new Set(['/health', '/health/live', '/health/ready', '/metrics']);

interface RequestScope {
  requestId: string;
  ctx: Context;
  span: Span | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    tally?: RequestScope;
    /** Set by ApiKeyGuard: the name of the API key that authenticated the request (the audit trail's actor). */
    apiKeyName?: string;
  }
}

/**
 * Per request: a request id (the caller's `X-Request-Id` when it is a plain id, else the trace id of its
 * `traceparent`, else a new UUID), echoed as `X-Request-Id`; the W3C trace context of the caller continued (a
 * server span when tracing is on); the route handler run inside that context, so every log line it causes, and
 * every Kafka message it produces, carries the request id and trace id; and one access log line when the answer
 * has gone (`request completed`: method, route template, url, status, duration, the API key's name as `actor`).
 *
 * Fastify hooks rather than pino-http: the route template, status and elapsed time are Fastify's already, and the
 * line costs one log call per request instead of a child logger per request.
 */
export function registerRequestContext(fastify: FastifyInstance, logger: Logger): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    const incoming = request.headers[REQUEST_ID_HEADER];
    let ctx = request.headers.traceparent === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, request.headers);
    const callerTrace = trace.getSpanContext(ctx);
    const requestId = isValidRequestId(incoming) ? incoming : (callerTrace?.traceId ?? randomUUID());
    const route = request.routeOptions.url ?? '(unmatched)';
    // Probes and scrapes (every few seconds, forever) would be most of the traces: access line yes, span no.
    const span = UNTRACED_ROUTES.has(route) ? undefined : startSpan(`${request.method} ${route}`, SpanKind.SERVER, ctx, {
      'http.request.method': request.method, 'http.route': route, 'url.path': request.url.split('?')[0], 'tally.request_id': requestId,
    });
    if (span) ctx = trace.setSpan(ctx, span);
    request.tally = { requestId, ctx: withRequestId(ctx, requestId), span };
    void reply.header(REQUEST_ID_HEADER, requestId);
    done();
  });
  // After the body is parsed (its stream events would lose the context): guards, pipes, handler and what they
  // start run inside the request's context.
  fastify.addHook('preHandler', (request, _reply, done) => {
    if (request.tally) context.with(request.tally.ctx, done);
    else done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    const scope = request.tally;
    const status = reply.statusCode;
    const spanContext = scope ? trace.getSpanContext(scope.ctx) : undefined;
    logger.info(
      {
        requestId: scope?.requestId,
        ...(spanContext && { traceId: spanContext.traceId, spanId: spanContext.spanId }),
        method: request.method,
        route: request.routeOptions.url ?? '(unmatched)',
        url: request.url,
        status,
        durationMs: Math.round(reply.elapsedTime * 100) / 100,
        ...(request.apiKeyName !== undefined && { actor: request.apiKeyName }),
      },
      'request completed',
    );
    if (scope?.span) {
      scope.span.setAttribute('http.response.status_code', status);
      if (request.apiKeyName !== undefined) scope.span.setAttribute('tally.actor', request.apiKeyName);
      if (status >= 500) scope.span.setStatus({ code: SpanStatusCode.ERROR });
      scope.span.end();
    }
    done();
  });
}

/** The request's own scope (request id and context), for code that holds the request. */
export function requestScopeOf(request: FastifyRequest): Readonly<RequestScope> | undefined {
  return request.tally;
}

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LATENCY_BUCKETS_SECONDS, counter, histogram } from './process.metrics';

const httpRequests = counter({
  name: 'tally_http_requests_total',
  help: 'HTTP requests answered, by method, route template and status code.',
  labelNames: ['method', 'route', 'status'],
});

const httpDuration = histogram({
  name: 'tally_http_request_duration_seconds',
  help: 'Time from receiving an HTTP request to sending the last byte of its answer, by method and route template.',
  labelNames: ['method', 'route'],
  buckets: LATENCY_BUCKETS_SECONDS,
});

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** The route of a request no route matched (404s, bad URLs): one label value, never the raw URL. */
export const UNMATCHED_ROUTE = '(unmatched)';

/** The labels of one answered request: the route's template (`/v1/accounts/:accountId/balance`), never its URL. */
export function httpRequestLabels(request: Pick<FastifyRequest, 'method' | 'routeOptions'>, reply: Pick<FastifyReply, 'statusCode'>) {
  return {
    method: METHODS.has(request.method) ? request.method : 'OTHER',
    route: request.routeOptions.url ?? UNMATCHED_ROUTE,
    status: String(reply.statusCode),
  };
}

/** Counts and times every answered request (Fastify's onResponse hook: after the last byte, whatever answered it). */
export function instrumentHttp(fastify: FastifyInstance): void {
  fastify.addHook('onResponse', (request, reply, done) => {
    const labels = httpRequestLabels(request, reply);
    httpRequests.inc(labels);
    httpDuration.observe({ method: labels.method, route: labels.route }, reply.elapsedTime / 1000);
    done();
  });
}

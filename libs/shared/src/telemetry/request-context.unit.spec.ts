import { Writable } from 'node:stream';
import { context } from '@opentelemetry/api';
import Fastify from 'fastify';
import pino from 'pino';
import { registerRequestContext } from '../http/request-context.logger';
import { carrierFromHeaders, carrierHeaders, carrierOf, contextOf, logContextFields } from './trace-context.codec';
import { startTracing, tracingEnabled } from './tracing.provider';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const TRACEPARENT = `00-${TRACE_ID}-b7ad6b7169203331-01`;

/** A pino logger writing JSON lines into an array (the services' own createLogger options, mixin included). */
function capturedLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done(); } });
  const logger = pino({ mixin: logContextFields, base: undefined }, sink);
  return { logger, lines };
}

describe('request context: request id, trace context, log fields (tracing off, the default)', () => {
  beforeAll(() => startTracing('test', { OTEL_TRACES_EXPORTER: 'none', OTEL_TRACES_SAMPLER: 'parentbased_always_on', OTEL_BSP_SCHEDULE_DELAY: 5000, otlpExporterOptions: () => ({}) }));

  it('stays off: no span is recorded', () => {
    expect(tracingEnabled()).toBe(false);
  });

  async function appWith(logger: pino.Logger) {
    const app = Fastify();
    registerRequestContext(app, logger);
    app.get('/v1/things/:id', async () => {
      logger.info({ step: 'inside' }, 'handler ran');
      // Work the handler starts later (a promise, a timer) is still in the request's context.
      await new Promise((resolve) => setTimeout(resolve, 5));
      return { carrier: carrierOf() ?? null };
    });
    await app.ready();
    return app;
  }

  it('echoes a valid X-Request-Id, writes one access line, and puts the id and trace id on the handler\'s lines', async () => {
    const { logger, lines } = capturedLogger();
    const app = await appWith(logger);
    const response = await app.inject({ method: 'GET', url: '/v1/things/7?x=1', headers: { 'x-request-id': 'req-42', traceparent: TRACEPARENT } });
    expect(response.headers['x-request-id']).toBe('req-42');
    // What the handler would pass on to Kafka: the caller's trace context and the request id.
    expect(response.json()).toEqual({ carrier: { traceparent: TRACEPARENT, requestId: 'req-42' } });
    expect(lines.find((line) => line.msg === 'handler ran')).toMatchObject({ requestId: 'req-42', traceId: TRACE_ID });
    const access = lines.filter((line) => line.msg === 'request completed');
    expect(access).toEqual([expect.objectContaining({ requestId: 'req-42', traceId: TRACE_ID, method: 'GET', route: '/v1/things/:id', url: '/v1/things/7?x=1', status: 200 })]);
    await app.close();
  });

  it('derives the request id from traceparent, else makes one up; refuses an id with markup', async () => {
    const { logger, lines } = capturedLogger();
    const app = await appWith(logger);
    expect((await app.inject({ url: '/v1/things/1', headers: { traceparent: TRACEPARENT } })).headers['x-request-id']).toBe(TRACE_ID);
    const made = (await app.inject({ url: '/v1/things/1' })).headers['x-request-id'];
    expect(made).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const refused = (await app.inject({ url: '/v1/things/1', headers: { 'x-request-id': '<script>' } })).headers['x-request-id'];
    expect(refused).not.toBe('<script>');
    // An unknown route still gets its access line.
    expect((await app.inject({ url: '/nowhere', headers: { 'x-request-id': 'req-404' } })).statusCode).toBe(404);
    expect(lines.find((line) => line.msg === 'request completed' && line.requestId === 'req-404')).toMatchObject({ status: 404, route: '(unmatched)' });
    await app.close();
  });

  it('carries the context through Kafka headers: a consumer\'s lines in a message\'s context name its request and trace', () => {
    const { logger, lines } = capturedLogger();
    const headers = carrierHeaders({ traceparent: TRACEPARENT, requestId: 'req-7' }) as Record<string, string>;
    expect(headers).toEqual({ traceparent: TRACEPARENT, 'x-request-id': 'req-7' });
    const incoming = carrierFromHeaders(headers);
    context.with(contextOf(incoming), () => logger.info('applied'));
    logger.info('outside any message');
    expect(lines[0]).toMatchObject({ requestId: 'req-7', traceId: TRACE_ID, spanId: 'b7ad6b7169203331' });
    expect(lines[1]).not.toHaveProperty('requestId');
    expect(lines[1]).not.toHaveProperty('traceId');
    // A message without any of them costs nothing.
    expect(carrierFromHeaders({ other: 'x' })).toBeUndefined();
  });

  it('never reuses the object pino merges a line into (a field of one line never leaks into the next)', () => {
    const { logger, lines } = capturedLogger();
    context.with(contextOf({ requestId: 'r-1' }), () => {
      logger.info({ a: 1 }, 'one');
      logger.info({ b: 2 }, 'two');
    });
    expect(lines[1]).toEqual(expect.objectContaining({ requestId: 'r-1', b: 2 }));
    expect(lines[1]).not.toHaveProperty('a');
    expect(logContextFields()).not.toBe(logContextFields());
  });
});

import { context, createContextKey, propagation, ROOT_CONTEXT, trace, type Context } from '@opentelemetry/api';

/** The request id header, accepted on requests, echoed on responses and carried on Kafka messages. */
export const REQUEST_ID_HEADER = 'x-request-id';
/** An id we accept from a caller: what our own ids may contain, so a log line never carries their markup. */
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;
const REQUEST_ID = createContextKey('tally.request-id');

/**
 * What travels with a Kafka message (as headers `traceparent`, `tracestate`, `x-request-id`) and with a stored
 * ledger event (in its metadata), so the work it causes later continues the request's trace and log context.
 */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
  requestId?: string;
}

export function isValidRequestId(value: unknown): value is string {
  return typeof value === 'string' && REQUEST_ID_PATTERN.test(value);
}

/** W3C trace context: `version-traceid-parentid-flags` in lower-case hex. */
const TRACEPARENT_PATTERN = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
/** Printable ASCII, at most the 512 characters W3C asks propagators to pass on. */
const TRACESTATE_PATTERN = /^[\x20-\x7e]{0,512}$/;

/**
 * Trace headers as they arrive on a Kafka message are whatever its producer wrote; only well-formed ones are kept,
 * stored (jsonb refuses a NUL) and passed on (a long one would be repeated on every event a message causes).
 */
export function isValidTraceparent(value: unknown): value is string {
  return typeof value === 'string' && TRACEPARENT_PATTERN.test(value);
}

export function isValidTracestate(value: unknown): value is string {
  return typeof value === 'string' && TRACESTATE_PATTERN.test(value);
}

export function withRequestId(ctx: Context, requestId: string): Context {
  return ctx.setValue(REQUEST_ID, requestId);
}

export function requestIdOf(ctx: Context): string | undefined {
  return ctx.getValue(REQUEST_ID) as string | undefined;
}

/** The context a carrier describes (W3C trace context + request id); ROOT_CONTEXT for an empty one. */
export function contextOf(carrier: TraceCarrier | undefined): Context {
  if (!carrier) return ROOT_CONTEXT;
  let ctx = carrier.traceparent ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT;
  if (carrier.requestId) ctx = withRequestId(ctx, carrier.requestId);
  return ctx;
}

/** The carrier of a context (the active one by default); undefined when it holds neither a trace nor a request id. */
export function carrierOf(ctx: Context = context.active()): TraceCarrier | undefined {
  if (ctx === ROOT_CONTEXT) return undefined;
  const carrier: TraceCarrier = {};
  if (trace.getSpanContext(ctx)) propagation.inject(ctx, carrier);
  const requestId = requestIdOf(ctx);
  if (requestId) carrier.requestId = requestId;
  return carrier.traceparent || carrier.requestId ? carrier : undefined;
}

/** Kafka headers of a carrier. */
export function carrierHeaders(carrier: TraceCarrier | undefined): Record<string, string> | undefined {
  if (!carrier) return undefined;
  const headers: Record<string, string> = {};
  if (carrier.traceparent) headers.traceparent = carrier.traceparent;
  if (carrier.tracestate) headers.tracestate = carrier.tracestate;
  if (carrier.requestId) headers[REQUEST_ID_HEADER] = carrier.requestId;
  return headers;
}

/**
 * The carrier in a consumed message's headers (strings), the well-formed parts only; undefined, allocating nothing,
 * when it has none.
 */
export function carrierFromHeaders(headers: Readonly<Record<string, string>>): TraceCarrier | undefined {
  const { traceparent, tracestate } = headers;
  const requestId = headers[REQUEST_ID_HEADER];
  if (traceparent === undefined && requestId === undefined) return undefined;
  const traced = isValidTraceparent(traceparent);
  const carrier: TraceCarrier = {
    ...(traced && { traceparent }),
    ...(traced && isValidTracestate(tracestate) && { tracestate }),
    ...(isValidRequestId(requestId) && { requestId }),
  };
  return carrier.traceparent || carrier.requestId ? carrier : undefined;
}

/** The carrier kept in a stored event's metadata (`traceparent`, `tracestate`, `requestId`), if any. */
export function carrierFromMetadata(metadata: Readonly<Record<string, unknown>>): TraceCarrier | undefined {
  const { traceparent, tracestate, requestId } = metadata;
  if (typeof traceparent !== 'string' && typeof requestId !== 'string') return undefined;
  return {
    ...(typeof traceparent === 'string' && { traceparent }),
    ...(typeof tracestate === 'string' && { tracestate }),
    ...(typeof requestId === 'string' && { requestId }),
  };
}

/**
 * pino's `mixin`: the request id and trace id of the active context on every log line (an HTTP request's, or a
 * Kafka message's while the consumer works on it). One AsyncLocalStorage read per line; nothing added outside one.
 * A new object each time: pino merges the line's own fields into it.
 */
export function logContextFields(): object {
  const ctx = context.active();
  if (ctx === ROOT_CONTEXT) return {};
  const requestId = requestIdOf(ctx);
  const span = trace.getSpanContext(ctx);
  if (span) return { requestId, traceId: span.traceId, spanId: span.spanId };
  return requestId ? { requestId } : {};
}

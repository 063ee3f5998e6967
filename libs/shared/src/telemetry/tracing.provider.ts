import {
  context, propagation, ROOT_CONTEXT, SpanStatusCode, trace, TraceFlags, type Attributes, type Context, type Link, type Span, type SpanKind, type Tracer,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type * as OtlpHttp from '@opentelemetry/exporter-trace-otlp-http';
import type * as Resources from '@opentelemetry/resources';
import type * as SdkTrace from '@opentelemetry/sdk-trace';
import type { CommonConfig } from '../config/common.config';
import { carrierOf, contextOf, type TraceCarrier } from './trace-context.codec';

type TracingConfig = Pick<
  CommonConfig,
  'OTEL_TRACES_EXPORTER' | 'OTEL_SERVICE_NAME' | 'OTEL_TRACES_SAMPLER' | 'OTEL_TRACES_SAMPLER_ARG' | 'OTEL_BSP_SCHEDULE_DELAY' | 'otlpExporterOptions'
>;

let provider: SdkTrace.TracerProvider | undefined;
let contextReady = false;
/** Read on hot paths before anything is allocated for a trace: false = the API's no-op tracer, no span is ever made. */
let recording = false;

/** The one tracer of the process (a proxy: a no-op until `startTracing` registered a provider). */
export const tracer: Tracer = trace.getTracer('tally');

/**
 * The context every service runs in, set up once per process and always: an AsyncLocalStorage context (so a log
 * line finds the request id and trace id of the work it belongs to, README "Logs") and the W3C trace-context
 * propagator (traceparent / tracestate in HTTP and Kafka headers). A tracer provider is added only when
 * OTEL_TRACES_EXPORTER is not `none`; otherwise spans are the API's no-ops and nothing is recorded or exported.
 */
export function startTracing(service: string, config: TracingConfig): void {
  if (!contextReady) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    contextReady = true;
  }
  if (provider || config.OTEL_TRACES_EXPORTER === 'none') return;
  // The SDK, its exporter and their dependencies are loaded only by a process that records spans: with tracing off
  // (the default) they were ~1.7 MB of live heap in every service, up to 3× that at its peak (V8 lets the old space
  // grow to 3× what is live before a full collection; docs/benchmarks.md, session 34).
  const sdk = require('@opentelemetry/sdk-trace') as typeof SdkTrace;
  const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof Resources;
  const exporter: SdkTrace.SpanExporter =
    config.OTEL_TRACES_EXPORTER === 'console'
      ? new sdk.ConsoleSpanExporter()
      : new (require('@opentelemetry/exporter-trace-otlp-http') as typeof OtlpHttp).OTLPTraceExporter(config.otlpExporterOptions());
  provider = new sdk.TracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.OTEL_SERVICE_NAME ?? service }),
    sampler: samplerOf(sdk, config.OTEL_TRACES_SAMPLER, config.OTEL_TRACES_SAMPLER_ARG ?? 1),
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter, scheduledDelayMillis: config.OTEL_BSP_SCHEDULE_DELAY })],
  });
  trace.setGlobalTracerProvider(provider);
  recording = true;
}

/** Exports what is buffered (graceful shutdown). */
export async function stopTracing(): Promise<void> {
  const stopping = provider;
  provider = undefined;
  recording = false;
  await stopping?.shutdown();
}

/** Whether spans are recorded at all (OTEL_TRACES_EXPORTER is not `none`). */
export function tracingEnabled(): boolean {
  return recording;
}

function samplerOf(sdk: typeof SdkTrace, name: string, ratio: number): SdkTrace.Sampler {
  const { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler } = sdk;
  switch (name) {
    case 'always_on': return new AlwaysOnSampler();
    case 'always_off': return new AlwaysOffSampler();
    case 'traceidratio': return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_off': return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    default: return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/**
 * A span that continues the trace of `parent` (a message's or a stored event's context), or undefined when
 * tracing is off or that trace is not sampled: a message without a sampled trace costs no span.
 */
export function startChildSpan(name: string, kind: SpanKind, parent: Context, attributes?: Attributes, links?: Link[]): Span | undefined {
  if (!recording) return undefined;
  const parentSpan = trace.getSpanContext(parent);
  if (!parentSpan || (parentSpan.traceFlags & TraceFlags.SAMPLED) === 0) return undefined;
  return tracer.startSpan(name, { kind, attributes, links }, parent);
}

/** A span that starts a trace when `parent` carries none (an HTTP request without traceparent); undefined when off. */
export function startSpan(name: string, kind: SpanKind, parent: Context = ROOT_CONTEXT, attributes?: Attributes): Span | undefined {
  if (!recording) return undefined;
  return tracer.startSpan(name, { kind, attributes }, parent);
}

/** The work of one consumed message: the context its log lines and spans run in, and its span when traced. */
export interface ConsumedTrace {
  ctx: Context;
  carrier: TraceCarrier;
  span: Span | undefined;
}

/**
 * For a consumed message (or a stored event) that carries a trace context or a request id: its context, continued
 * by a span named `name` when tracing is on and its trace sampled (`carrier` then names that span, for what the
 * work passes on). Undefined for a message that carries neither: nothing is allocated for it.
 */
export function continueTrace(name: string, kind: SpanKind, incoming: TraceCarrier | undefined, attributes?: Attributes): ConsumedTrace | undefined {
  if (!incoming) return undefined;
  const parent = contextOf(incoming);
  const span = startChildSpan(name, kind, parent, attributes);
  if (!span) return { ctx: parent, carrier: incoming, span };
  const ctx = trace.setSpan(parent, span);
  return { ctx, carrier: carrierOf(ctx) ?? incoming, span };
}

/** Ends a span, marking it failed when `error` is given. */
export function endSpan(span: Span | undefined, error?: unknown): void {
  if (!span) return;
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}

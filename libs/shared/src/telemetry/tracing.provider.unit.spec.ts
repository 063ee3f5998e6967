import { moduleLoads } from '../testing/module-loads.harness';
import type * as Tracing from './tracing.provider';

/**
 * The tracing SDK and its exporters are loaded only by a process that records spans: with OTEL_TRACES_EXPORTER=none
 * (the default) every service carried them as live heap it never used.
 */
describe('startTracing', () => {
  const config = (exporter: 'none' | 'console') => ({
    OTEL_TRACES_EXPORTER: exporter,
    OTEL_SERVICE_NAME: 'tracing-spec',
    OTEL_TRACES_SAMPLER: 'always_on',
    OTEL_TRACES_SAMPLER_ARG: 1,
    OTEL_BSP_SCHEDULE_DELAY: 5_000,
    otlpExporterOptions: () => ({}),
  });

  async function startObserved(exporter: 'none' | 'console'): Promise<{ sdkLoads: number; recording: boolean }> {
    let tracing: typeof Tracing | undefined;
    const sdkLoads = moduleLoads('@opentelemetry/sdk-trace', () => {
      tracing = require('./tracing.provider') as typeof Tracing;
      tracing.startTracing('tracing-spec', config(exporter));
    });
    const recording = tracing?.tracingEnabled() ?? false;
    await tracing?.stopTracing();
    return { sdkLoads, recording };
  }

  it('given tracing off, when a service starts it, then the SDK is not loaded and nothing records', async () => {
    expect(await startObserved('none')).toEqual({ sdkLoads: 0, recording: false });
  });

  it('given an exporter, when a service starts tracing, then the SDK is loaded and spans are recorded', async () => {
    expect(await startObserved('console')).toEqual({ sdkLoads: 1, recording: true });
  });
});

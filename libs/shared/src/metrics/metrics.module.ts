import { type DynamicModule, Module, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { instrumentHttp } from './http.metrics';
import { MetricsHttpController } from './metrics.http.controller';
import { collectProcessMetrics } from './process.metrics';

export interface MetricsOptions {
  /** METRICS_ENABLED (CommonConfig): false = no `/metrics` route and no HTTP instrumentation. */
  enabled: boolean;
}

/** Counts HTTP requests on the app's Fastify instance; registered once the adapter exists (before listening). */
class HttpInstrumentation implements OnModuleInit {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    instrumentHttp(this.adapterHost.httpAdapter.getInstance<FastifyInstance>());
  }
}

/**
 * Prometheus metrics for a service: `GET /metrics` (the process's registry, see process.metrics.ts), HTTP request
 * counts and durations by route template, and Node's own metrics. Every service's root module imports
 * `MetricsModule.forRoot({ enabled: config.METRICS_ENABLED })`.
 */
@Module({})
export class MetricsModule {
  static forRoot(options: MetricsOptions): DynamicModule {
    if (!options.enabled) return { module: MetricsModule };
    collectProcessMetrics();
    return {
      module: MetricsModule,
      controllers: [MetricsHttpController],
      providers: [{ provide: HttpInstrumentation, inject: [HttpAdapterHost], useFactory: (host: HttpAdapterHost) => new HttpInstrumentation(host) }],
    };
  }
}

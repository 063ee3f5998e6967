import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { errorClass } from './error-class.model';
import { UNMATCHED_ROUTE, httpRequestLabels } from './http.metrics';
import { MetricsModule } from './metrics.module';
import { metricsRegistry, scrapeTimeGauges } from './process.metrics';
import { parsePrometheusText, samplesOf, sumOf } from './prometheus-text.parser';

describe('errorClass (a bounded failure label)', () => {
  it('classes PostgreSQL errors by SQLSTATE, connection loss, Kafka and the rest', () => {
    expect(errorClass(Object.assign(new Error('deadlock detected'), { code: '40P01' }))).toBe('conflict');
    expect(errorClass(Object.assign(new Error('production bug'), { code: 'P0001' }))).toBe('database');
    expect(errorClass(Object.assign(new Error('terminating connection'), { code: '57P01' }))).toBe('connection');
    expect(errorClass(Object.assign(new Error('canceling statement'), { code: '57014' }))).toBe('timeout');
    // A message PostgreSQL refused as malformed is a bug of ours, not a lost connection.
    expect(errorClass(Object.assign(new Error('bind message supplies 3 parameters'), { code: '08P01' }))).toBe('database');
    expect(errorClass(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe('connection');
    expect(errorClass(new Error('Connection terminated unexpectedly'))).toBe('connection');
    expect(errorClass(Object.assign(new Error('broker gone'), { name: 'KafkaJSConnectionError' }))).toBe('kafka');
    expect(errorClass(new Error('anything else'))).toBe('other');
    expect(errorClass('a string')).toBe('other');
  });
});

describe('httpRequestLabels', () => {
  it('labels a request by its route template, never its URL, and bounds the method', () => {
    const matched = httpRequestLabels({ method: 'GET', routeOptions: { url: '/v1/accounts/:accountId/balance' } } as never, { statusCode: 200 });
    expect(matched).toEqual({ method: 'GET', route: '/v1/accounts/:accountId/balance', status: '200' });
    expect(httpRequestLabels({ method: 'PROPFIND', routeOptions: {} } as never, { statusCode: 404 })).toEqual({ method: 'OTHER', route: UNMATCHED_ROUTE, status: '404' });
  });
});

describe('parsePrometheusText', () => {
  it('reads samples with labels (escaped quotes included) and skips comments', () => {
    const samples = parsePrometheusText(
      ['# HELP x_total help', '# TYPE x_total counter', 'x_total{group="g",topic="t",partition="0"} 3', 'x_total{group="g",topic="t",partition="1"} 4', 'y{v="a \\"quoted\\" one"} 1.5', 'z 7', ''].join('\n'),
    );
    expect(sumOf(samples, 'x_total', { group: 'g' })).toBe(7);
    expect(samplesOf(samples, 'x_total', { partition: '1' })).toEqual([{ name: 'x_total', labels: { group: 'g', topic: 't', partition: '1' }, value: 4 }]);
    expect(samplesOf(samples, 'y')[0].labels.v).toBe('a "quoted" one');
    expect(sumOf(samples, 'z')).toBe(7);
    expect(() => parsePrometheusText('not a sample line at all')).toThrow(/not a Prometheus sample/);
  });
});

@Controller('v1/things')
class ThingsController {
  @Get(':id')
  get() {
    return { ok: true };
  }
}

async function appWith(enabled: boolean): Promise<NestFastifyApplication> {
  @Module({ imports: [MetricsModule.forRoot({ enabled })], controllers: [ThingsController] })
  class TestModule {}
  const app = await NestFactory.create<NestFastifyApplication>(TestModule, new FastifyAdapter(), { logger: false, abortOnError: false });
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  return app;
}

describe('scrapeTimeGauges', () => {
  it('reads once per scrape for all its gauges, and again at the next scrape', async () => {
    let reads = 0;
    scrapeTimeGauges(async () => ({ depth: 3, age: 10 + (reads += 1) }), [
      { name: 'test_scrape_depth', help: 'test', value: (r) => r.depth },
      { name: 'test_scrape_age_seconds', help: 'test', value: (r) => r.age },
    ]);
    const first = parsePrometheusText(await metricsRegistry.metrics());
    expect([reads, sumOf(first, 'test_scrape_depth'), sumOf(first, 'test_scrape_age_seconds')]).toEqual([1, 3, 11]);
    const second = parsePrometheusText(await metricsRegistry.metrics());
    expect([reads, sumOf(second, 'test_scrape_age_seconds')]).toEqual([2, 12]);
  });
});

describe('MetricsModule', () => {
  it('serves the registry at /metrics in the Prometheus text format, counting requests by route template', async () => {
    const app = await appWith(true);
    try {
      const fastify = app.getHttpAdapter().getInstance();
      for (const id of ['a-1', 'b-2', 'c-3']) expect((await fastify.inject({ method: 'GET', url: `/v1/things/${id}` })).statusCode).toBe(200);
      expect((await fastify.inject({ method: 'GET', url: '/nowhere' })).statusCode).toBe(404);
      const scrape = await fastify.inject({ method: 'GET', url: '/metrics' });
      expect(scrape.statusCode).toBe(200);
      expect(scrape.headers['content-type']).toContain('text/plain; version=0.0.4');
      const samples = parsePrometheusText(scrape.body);
      expect(sumOf(samples, 'tally_http_requests_total', { method: 'GET', route: '/v1/things/:id', status: '200' })).toBeGreaterThanOrEqual(3);
      expect(sumOf(samples, 'tally_http_requests_total', { route: UNMATCHED_ROUTE, status: '404' })).toBeGreaterThanOrEqual(1);
      expect(sumOf(samples, 'tally_http_request_duration_seconds_count', { route: '/v1/things/:id' })).toBeGreaterThanOrEqual(3);
      expect(samples.some((sample) => sample.labels.route?.includes('a-1'))).toBe(false);
      expect(samplesOf(samples, 'nodejs_eventloop_lag_p99_seconds')).toHaveLength(1);
    } finally {
      await app.close();
    }
  });

  it('serves nothing when METRICS_ENABLED is false', async () => {
    const app = await appWith(false);
    try {
      expect((await app.getHttpAdapter().getInstance().inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });
});

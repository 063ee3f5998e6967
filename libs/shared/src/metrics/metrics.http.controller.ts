import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '../http/api-key.guard';
import { metricsRegistry } from './process.metrics';

/**
 * `GET /metrics`: the process's registry in the Prometheus text format, for a Prometheus scrape. Unauthenticated
 * like `/health/*` (it names no account and no secret; keep it off the public ingress), and off with
 * METRICS_ENABLED=false. Not in the OpenAPI document: it is for Prometheus, not for API clients.
 */
@ApiExcludeController()
@Controller('metrics')
export class MetricsHttpController {
  @Get()
  @Public()
  @Header('Cache-Control', 'no-store')
  async scrape(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const body = await metricsRegistry.metrics();
    void reply.header('Content-Type', metricsRegistry.contentType);
    return body;
  }
}

import { Controller, Get, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { Public } from '../http/api-key.guard';
import { recordHealthChecks } from './health.metrics';
import { NotReadyError } from './worker-health.service';

/**
 * Named readiness checks: dependencies (postgres, kafka) and background workers (consumers, relay, outbox).
 * Each throws when its dependency is unreachable or its worker is not flowing; a NotReadyError's details
 * (which consumer, partition, offset, last error) are reported in the 503 body.
 */
export const HEALTH_CHECKS = Symbol('HEALTH_CHECKS');
export type HealthChecks = Record<string, () => Promise<unknown> | unknown>;

/**
 * `GET /health/live`: the process is up and its event loop answers; no dependency is checked, so a restart
 * never fixes what makes it fail (use it for liveness).
 * `GET /health/ready` (and `GET /health`, kept for compatibility): the service can serve, i.e. every check
 * passes; 503 names what does not (use it for readiness and for waiting on a service).
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(HEALTH_CHECKS) private readonly checks: HealthChecks,
  ) {}

  @Get('live')
  @Public()
  @ApiOperation({ operationId: 'getLiveness', summary: 'The process is up (no dependency checked)' })
  @ApiOkResponse({ schema: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } })
  live() {
    return { status: 'ok' };
  }

  @Get('ready')
  @Public()
  @ApiOperation({ operationId: 'getReadiness', summary: 'The service can serve: every dependency and worker check passes (503 names what does not)' })
  @HealthCheck()
  ready(@Res({ passthrough: true }) reply: FastifyReply) {
    return this.readiness(reply);
  }

  @Get()
  @Public()
  @ApiOperation({ operationId: 'getHealth', summary: 'Same as /health/ready (kept for compatibility)' })
  @HealthCheck()
  check(@Res({ passthrough: true }) reply: FastifyReply) {
    return this.readiness(reply);
  }

  /**
   * The 503 body (which check is down, and why) is sent as is: thrown, the global error filter would replace it
   * with a generic body, and an operator could not see which consumer, partition or offset is stuck.
   */
  private async readiness(reply: FastifyReply) {
    try {
      const result = await this.runChecks();
      recordHealthChecks(result.details);
      return result;
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      reply.status(503);
      const body = error.getResponse();
      recordHealthChecks((body as { details?: Record<string, { status: string }> }).details);
      return body;
    }
  }

  private runChecks() {
    return this.health.check(
      Object.entries(this.checks).map(([name, probe]) => async () => {
        const indicator = this.indicators.check(name);
        try {
          await probe();
          return indicator.up();
        } catch (error) {
          const details = error instanceof NotReadyError ? error.details : {};
          return indicator.down({ ...details, message: (error as Error).message });
        }
      }),
    );
  }
}

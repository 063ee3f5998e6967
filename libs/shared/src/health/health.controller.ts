import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { Public } from '../http/api-key.guard';

/** Named dependency checks (e.g. postgres, kafka); each throws when its dependency is unreachable. */
export const HEALTH_CHECKS = Symbol('HEALTH_CHECKS');
export type HealthChecks = Record<string, () => Promise<unknown>>;

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(HEALTH_CHECKS) private readonly checks: HealthChecks,
  ) {}

  @Get()
  @Public()
  @HealthCheck()
  check() {
    return this.health.check(
      Object.entries(this.checks).map(([name, probe]) => async () => {
        const indicator = this.indicators.check(name);
        try {
          await probe();
          return indicator.up();
        } catch (error) {
          return indicator.down({ message: (error as Error).message });
        }
      }),
    );
  }
}

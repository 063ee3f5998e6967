import type { CanActivate, ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors/app.errors';
import { AuthError, bearerOf } from './api-key.guard';
import type { RateDecision, RateLimiter } from './rate-limit.model';

export class RateLimitedError extends AppError<'RATE_LIMITED'> {}

export const RATE_LIMIT_STATUS_BY_CODE = { RATE_LIMITED: 429 } as const;

/** Never limited: the probes and the scrape (an orchestrator must always get its answer). */
export function isUnlimitedPath(path: string): boolean {
  return path === '/metrics' || path === '/health' || path.startsWith('/health/');
}

/**
 * Rate limits by who is calling, which only authentication knows: wraps the API-key guard and, once it decided,
 * takes one request from the caller's bucket: the API key's name, a portal token's account (`portal:<accountId>`,
 * the name the guard gives it), or, for a request it refused (no key, a wrong one, an invalid token), the client's
 * address. Over the limit: 429 RATE_LIMITED with Retry-After, also instead of the 401 (an address guessing keys is
 * slowed down like any other). `RateLimit-Limit`, `-Remaining` and `-Reset` (IETF draft) are on every limited answer.
 *
 * A library (@fastify/rate-limit) counts in a Fastify hook, before Nest's guards have authenticated anyone, so it
 * could only key by the raw Authorization header (any made-up bearer would get a fresh bucket) or authenticate a
 * second time; hence this small wrapper and a token bucket (rate-limit.model.ts).
 */
export class RateLimitGuard implements CanActivate {
  constructor(
    private readonly authenticate: CanActivate,
    private readonly limiter: RateLimiter,
    /** The key a refused request presented, if it is one (a valid key without the route's scope counts as that key). */
    private readonly keyNameOf: (bearer: string) => string | undefined,
  ) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    if (isUnlimitedPath(request.routeOptions.url ?? request.url)) return this.authenticate.canActivate(context) as boolean | Promise<boolean>;
    let outcome: boolean | Promise<boolean>;
    try {
      outcome = this.authenticate.canActivate(context) as boolean | Promise<boolean>;
    } catch (error) {
      throw this.refused(request, reply, error);
    }
    if (outcome instanceof Promise) {
      return outcome.then(
        (allowed) => this.admit(request, reply, allowed),
        (error: unknown) => {
          throw this.refused(request, reply, error);
        },
      );
    }
    return this.admit(request, reply, outcome);
  }

  private admit(request: FastifyRequest, reply: FastifyReply, allowed: boolean): boolean {
    // Public routes (none but the probes today) leave no key name: limited by address.
    const caller = request.apiKeyName !== undefined ? `key:${request.apiKeyName}` : `ip:${request.ip}`;
    enforce(this.limiter.take(caller), reply);
    return allowed;
  }

  /**
   * A request authentication refused counts against its key when it presented a valid one (a 403: the route needs
   * another scope or account), else against its address; past the limit it is a 429 rather than the 401/403.
   */
  private refused(request: FastifyRequest, reply: FastifyReply, error: unknown): unknown {
    if (!(error instanceof AuthError)) return error;
    const bearer = bearerOf(request);
    const name = error.code === 'FORBIDDEN' && bearer !== undefined ? this.keyNameOf(bearer) : undefined;
    const decision = this.limiter.take(name !== undefined ? `key:${name}` : `ip:${request.ip}`);
    try {
      enforce(decision, reply);
    } catch (limited) {
      return limited;
    }
    return error;
  }
}

/** Sets the RateLimit-* headers of a decision, and throws the 429 (with Retry-After) when it refused. */
export function enforce(decision: RateDecision, reply: FastifyReply): void {
  void reply.header('RateLimit-Limit', String(decision.limit.burst));
  void reply.header('RateLimit-Remaining', String(decision.remaining));
  void reply.header('RateLimit-Reset', String(decision.allowed ? decision.resetSeconds : decision.retryAfterSeconds));
  if (decision.allowed) return;
  void reply.header('Retry-After', String(decision.retryAfterSeconds));
  throw new RateLimitedError('RATE_LIMITED', `Too many requests; retry after ${decision.retryAfterSeconds} s.`, {
    limit: { perSecond: decision.limit.perSecond, burst: decision.limit.burst },
    retryAfterSeconds: decision.retryAfterSeconds,
  });
}

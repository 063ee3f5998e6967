import type { CanActivate, ExecutionContext } from '@nestjs/common';
import { AuthError } from './api-key.guard';
import { RateLimitedError, RateLimitGuard } from './rate-limit.guard';
import { RateLimiter } from './rate-limit.model';

/** A request as the guard sees it, and the headers it set on the reply. */
function contextOf(request: { url: string; authorization?: string; ip?: string }) {
  const headers: Record<string, string> = {};
  const fastifyRequest = { url: request.url, routeOptions: { url: request.url }, ip: request.ip ?? '10.0.0.1', headers: { authorization: request.authorization } } as Record<string, any>;
  const reply = { header: (name: string, value: string) => (headers[name] = value) };
  const context = { switchToHttp: () => ({ getRequest: () => fastifyRequest, getResponse: () => reply }) } as unknown as ExecutionContext;
  return { context, headers, request: fastifyRequest };
}

/** Authentication that admits `good` (as key `chat`), refuses `scopeless` with 403 and anything else with 401. */
const authenticate: CanActivate = {
  canActivate: (context) => {
    const request = context.switchToHttp().getRequest<Record<string, any>>();
    const bearer = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (bearer === 'good') {
      request.apiKeyName = 'chat';
      return true;
    }
    if (bearer === 'scopeless') throw new AuthError('FORBIDDEN', 'lacks the scope');
    throw new AuthError('UNAUTHENTICATED', 'no key');
  },
};

describe('RateLimitGuard (limits by who authentication says is calling)', () => {
  const taken: string[] = [];
  const guard = () => {
    taken.length = 0;
    const limiter = new RateLimiter(() => ({ perSecond: 0.01, burst: 2 }), () => 0);
    const take = limiter.take.bind(limiter);
    limiter.take = (caller: string) => (taken.push(caller), take(caller));
    return new RateLimitGuard(authenticate, limiter, (bearer) => (bearer === 'scopeless' ? 'reporter' : bearer === 'good' ? 'chat' : undefined));
  };

  it('counts an admitted request against its key, with RateLimit headers, and refuses past the burst with Retry-After', () => {
    const limited = guard();
    expect(limited.canActivate(contextOf({ url: '/v1/x', authorization: 'Bearer good' }).context)).toBe(true);
    const second = contextOf({ url: '/v1/x', authorization: 'Bearer good' });
    limited.canActivate(second.context);
    expect(second.headers).toMatchObject({ 'RateLimit-Limit': '2', 'RateLimit-Remaining': '0' });
    const third = contextOf({ url: '/v1/x', authorization: 'Bearer good' });
    expect(() => limited.canActivate(third.context)).toThrow(RateLimitedError);
    expect(third.headers['Retry-After']).toBe('100');
    expect(taken).toEqual(['key:chat', 'key:chat', 'key:chat']);
  });

  it('counts a 401 against the address and answers 429 instead once it is spent; a 403 against the key it presented', () => {
    const limited = guard();
    const errors = [1, 2, 3].map(() => {
      try {
        limited.canActivate(contextOf({ url: '/v1/x', authorization: 'Bearer guess' }).context);
      } catch (error) {
        return (error as AuthError | RateLimitedError).code;
      }
      return 'admitted';
    });
    expect(errors).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED', 'RATE_LIMITED']);
    expect(() => limited.canActivate(contextOf({ url: '/v1/x', authorization: 'Bearer scopeless' }).context)).toThrow(AuthError);
    expect(taken).toEqual(['ip:10.0.0.1', 'ip:10.0.0.1', 'ip:10.0.0.1', 'key:reporter']);
  });

  it('never counts the probes or the scrape', () => {
    const limited = guard();
    for (let i = 0; i < 10; i++) {
      for (const url of ['/health/live', '/health/ready', '/metrics']) expect(() => limited.canActivate(contextOf({ url }).context)).toThrow(AuthError);
    }
    expect(taken).toEqual([]);
  });
});

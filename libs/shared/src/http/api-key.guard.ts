import { CanActivate, createParamDecorator, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors/app.errors';
import { ApiKeyRegistry, type Scope } from './api-keys.config';

const SCOPE_KEY = 'tally:required-scope';
const PUBLIC_KEY = 'tally:public';

/** The scope a route requires; the `admin` scope satisfies every requirement. */
export const RequireScope = (scope: Scope) => SetMetadata(SCOPE_KEY, scope);
/** Routes without a key: /health and /docs only. */
export const Public = () => SetMetadata(PUBLIC_KEY, true);

export class AuthError extends AppError<'UNAUTHENTICATED' | 'FORBIDDEN'> {}

export const AUTH_STATUS_BY_CODE = { UNAUTHENTICATED: 401, FORBIDDEN: 403 } as const;

@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeyRegistry,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const match = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '');
    const entry = match ? this.keys.find(match[1]) : undefined;
    if (!entry) throw new AuthError('UNAUTHENTICATED', 'A valid service API key is required (Authorization: Bearer <key>).');
    const required = this.reflector.getAllAndOverride<Scope | undefined>(SCOPE_KEY, targets);
    if (required && !entry.scopes.includes(required) && !entry.scopes.includes('admin')) {
      throw new AuthError('FORBIDDEN', `This API key lacks the ${required} scope.`, { requiredScope: required });
    }
    request.apiKeyName = entry.name;
    return true;
  }
}

/**
 * The name of the API key that authenticated the request (set by ApiKeyGuard): the actor recorded on the events a
 * money-changing command appends (README "Logs", who did what).
 */
export const ApiKeyName = createParamDecorator((_data: unknown, context: ExecutionContext): string | undefined =>
  context.switchToHttp().getRequest<FastifyRequest>().apiKeyName,
);

import { applyDecorators, CanActivate, createParamDecorator, ExecutionContext, Injectable, Logger, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiExtension } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors/app.errors';
import type { Clock } from '../time/clock.provider';
import { allowsScope, inNamespaces, LEGACY_SCOPES, LEGACY_SCOPES_REMOVED_IN, type Scope } from './api-key-access.model';
import { ApiKeyRegistry } from './api-keys.config';
import { hasPortalTokenShape, PortalTokenError, type PortalGrant, type PortalTokenCodec } from './portal-token.codec';

const SCOPE_KEY = 'tally:required-scope';
const PUBLIC_KEY = 'tally:public';
const PORTAL_READABLE_KEY = 'tally:portal-readable';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by ApiKeyGuard when a portal token authenticated the request: what the token grants. */
    portalGrant?: PortalGrant;
    /** Set by ApiKeyGuard: the account-id prefixes the API key is limited to; undefined = every account. */
    apiKeyNamespaces?: readonly string[];
    /** Set by ApiKeyGuard when an API key authenticated the request: its id (ApiKey.id), which a minted portal token carries. */
    apiKeyId?: string;
    /** Set by ApiKeyGuard when an API key authenticated the request: the scopes it grants. */
    apiKeyScopes?: ReadonlySet<Scope>;
  }
}

/**
 * The scope a route requires (the `admin` scope satisfies every requirement), also written into the route's
 * OpenAPI operation as `x-required-scope`.
 */
export const RequireScope = (scope: Scope) => applyDecorators(SetMetadata(SCOPE_KEY, scope), ApiExtension('x-required-scope', scope));
/** Routes without a key: /health and /docs only. */
export const Public = () => SetMetadata(PUBLIC_KEY, true);
/**
 * A read route a portal token may call (besides API keys with the route's scope): only for the account the token
 * was minted for, the route's `:accountId` (or `?accountId`) being the token's subject. Never on a route that
 * changes money or mints.
 */
export const PortalReadable = () => SetMetadata(PORTAL_READABLE_KEY, true);

export class AuthError extends AppError<'UNAUTHENTICATED' | 'FORBIDDEN' | 'ACCOUNT_OUTSIDE_NAMESPACE'> {}

export const AUTH_STATUS_BY_CODE = { UNAUTHENTICATED: 401, FORBIDDEN: 403, ACCOUNT_OUTSIDE_NAMESPACE: 403 } as const;

/** The refusal of an account outside the key's namespaces: names only what the caller sent. */
export const outsideNamespaceError = (details: Record<string, unknown>, what = 'This account is'): AuthError =>
  new AuthError('ACCOUNT_OUTSIDE_NAMESPACE', `${what} outside the account namespaces of this API key.`, details);

/** How the guard checks portal tokens; without it (the services other than the ledger) they are refused. */
export interface PortalTokenCheck {
  codec: PortalTokenCodec;
  clock: Clock;
}

@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeyRegistry,
    private readonly portal?: PortalTokenCheck,
  ) {
    for (const key of keys.withLegacyScopes()) {
      const mapped = key.legacyScopes.map((scope) => `${scope} → ${LEGACY_SCOPES[scope].join(', ')}`).join('; ');
      new Logger('ApiKeyGuard').warn(
        `API key "${key.name}" uses deprecated scope(s) ${key.legacyScopes.join(', ')}, mapped to ${mapped}; ` +
          `they are refused from ${LEGACY_SCOPES_REMOVED_IN} on: configure the job scopes instead (README "API").`,
      );
    }
    for (const { key, namespace } of keys.openEndedNamespaces()) {
      new Logger('ApiKeyGuard').warn(
        `API key "${key}" has the namespace "${namespace}", which also covers accounts such as "${namespace}x…"; ` +
          `end a prefix with a delimiter ("${namespace}-") unless that is meant (README "API").`,
      );
    }
  }

  /** Synchronous for API keys (the hot path); a portal token's signature check is asynchronous. */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const bearer = bearerOf(request);
    const entry = bearer === undefined ? undefined : this.keys.find(bearer);
    if (!entry) {
      if (bearer !== undefined && hasPortalTokenShape(bearer)) return this.admitPortalToken(bearer, request, targets);
      throw new AuthError('UNAUTHENTICATED', 'A valid service API key is required (Authorization: Bearer <key>).');
    }
    const required = this.reflector.getAllAndOverride<Scope | undefined>(SCOPE_KEY, targets);
    if (!allowsScope(entry.scopes, required)) {
      throw new AuthError('FORBIDDEN', `This API key lacks the ${required} scope.`, { requiredScope: required });
    }
    // A key limited to namespaces acts only on accounts inside them: the route's :accountId (or ?accountId). Routes
    // naming accounts in their body (the usage batch) check them with ApiKeyNamespaces once the body is validated.
    if (entry.namespaces) {
      const accountId = accountIdOf(request);
      if (accountId !== undefined && (typeof accountId !== 'string' || !inNamespaces(entry.namespaces, accountId))) throw outsideNamespaceError({ accountId });
      request.apiKeyNamespaces = entry.namespaces;
    }
    request.apiKeyName = entry.name;
    request.apiKeyId = entry.id;
    request.apiKeyScopes = entry.scopes;
    return true;
  }

  /**
   * A portal token: verified first (401 when expired or not valid, whatever the route), then allowed only on a
   * portal-readable route of its own account (403 otherwise). Messages never quote the token.
   */
  private async admitPortalToken(token: string, request: FastifyRequest, targets: Parameters<Reflector['getAllAndOverride']>[1]): Promise<boolean> {
    if (!this.portal) throw new AuthError('UNAUTHENTICATED', 'Portal tokens are not accepted here; use a service API key.', { reason: 'PORTAL_TOKENS_DISABLED' });
    let grant: PortalGrant;
    try {
      grant = await this.portal.codec.verify(token, this.portal.clock.now());
    } catch (error) {
      if (!(error instanceof PortalTokenError)) throw error;
      const reason = error.reason === 'expired' ? 'TOKEN_EXPIRED' : 'TOKEN_INVALID';
      throw new AuthError('UNAUTHENTICATED', error.message, { reason });
    }
    // Like an expired one, before the route is looked at: 401 wherever it is presented.
    if (grant.mintedBy !== undefined && !mintsFor(this.keys, grant.mintedBy, grant.accountId)) {
      throw new AuthError('UNAUTHENTICATED', 'The API key that minted this portal token no longer mints for this account (removed, replaced or narrowed); mint a new one.', {
        reason: 'TOKEN_REVOKED',
      });
    }
    if (!this.reflector.getAllAndOverride<boolean>(PORTAL_READABLE_KEY, targets)) {
      throw new AuthError('FORBIDDEN', 'A portal token may only read its own account; this route needs a service API key.', { reason: 'PORTAL_TOKEN_NOT_ALLOWED' });
    }
    const accountId = accountIdOf(request);
    if (accountId !== undefined && accountId !== grant.accountId) {
      throw new AuthError('FORBIDDEN', 'This portal token is for another account.', { reason: 'OTHER_ACCOUNT' });
    }
    request.portalGrant = grant;
    // The audit trail's actor; portal tokens only read, so no event ever records it, but access lines do.
    request.apiKeyName = `portal:${grant.accountId}`;
    return true;
  }
}

/**
 * Whether a configured key with this id may still mint for the account: a token lives no longer than its minting key's
 * right to mint it (the key removed from API_KEYS, given another secret, stripped of portal:mint or narrowed).
 */
function mintsFor(keys: ApiKeyRegistry, keyId: string, accountId: string): boolean {
  const minter = keys.byId(keyId);
  return minter !== undefined && allowsScope(minter.scopes, 'portal:mint') && inNamespaces(minter.namespaces, accountId);
}

/** What `Authorization: Bearer <credential>` presents (an API key or a portal token); undefined without one. */
export function bearerOf(request: FastifyRequest): string | undefined {
  return /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
}

/** The account a route acts on: its `:accountId`, or `?accountId` (GET /v1/portal/session). */
function accountIdOf(request: FastifyRequest): unknown {
  return (request.params as Record<string, unknown> | undefined)?.accountId ?? (request.query as Record<string, unknown> | undefined)?.accountId;
}

/**
 * The account-id prefixes the request's API key is limited to (set by ApiKeyGuard); undefined for a key of every
 * account (and for portal tokens, which are bound to one account already).
 */
export const ApiKeyNamespaces = createParamDecorator((_data: unknown, context: ExecutionContext): readonly string[] | undefined =>
  context.switchToHttp().getRequest<FastifyRequest>().apiKeyNamespaces,
);

/**
 * Whether the request's API key also grants `scope` (admin grants all): for an answer that shows more to a key that may
 * write what it reads. False for portal tokens.
 */
export const ApiKeyAllows = createParamDecorator((scope: Scope, context: ExecutionContext): boolean => {
  const scopes = context.switchToHttp().getRequest<FastifyRequest>().apiKeyScopes;
  return scopes !== undefined && allowsScope(scopes, scope);
});

/** The id (ApiKey.id) of the API key that authenticated the request (set by ApiKeyGuard): what a minted portal token carries. */
export const ApiKeyId = createParamDecorator((_data: unknown, context: ExecutionContext): string | undefined =>
  context.switchToHttp().getRequest<FastifyRequest>().apiKeyId,
);

/**
 * The name of the API key that authenticated the request (set by ApiKeyGuard): the actor recorded on the events a
 * money-changing command appends (README "Logs", who did what).
 */
export const ApiKeyName = createParamDecorator((_data: unknown, context: ExecutionContext): string | undefined =>
  context.switchToHttp().getRequest<FastifyRequest>().apiKeyName,
);

/** The grant of the portal token that authenticated the request; undefined for a service API key. */
export const PortalGrantOf = createParamDecorator((_data: unknown, context: ExecutionContext): PortalGrant | undefined =>
  context.switchToHttp().getRequest<FastifyRequest>().portalGrant,
);

/**
 * What an API key may do (README "API", scopes and namespaces): pure rules, used by ApiKeyGuard and the usage batch.
 * A scope is a job (report usage, authorize and hold, grant promotional credits, …); every endpoint requires exactly
 * one, and `admin` satisfies every requirement.
 */
export const SCOPES = [
  'usage:write',
  'holds:write',
  'accounts:read',
  'purchases:write',
  'grants:write',
  'corrections:write',
  'subscriptions:write',
  'notifications:write',
  'portal:mint',
  'admin',
] as const;
export type Scope = (typeof SCOPES)[number];

/**
 * Scopes of earlier releases, still accepted in API_KEYS and mapped to what they used to grant. `accounts:write`
 * (0.1.x) granted every write on an account: it is accepted through 0.2 with a deprecation warning at boot naming the
 * key, and refused from 0.3 on (README "API: endpoints, scopes and namespaces").
 */
export const LEGACY_SCOPES = {
  'accounts:write': ['holds:write', 'purchases:write', 'grants:write', 'corrections:write', 'subscriptions:write', 'notifications:write'],
} as const satisfies Record<string, readonly Scope[]>;
export type LegacyScope = keyof typeof LEGACY_SCOPES;
export const LEGACY_SCOPES_REMOVED_IN = '0.3';

export const isLegacyScope = (scope: string): scope is LegacyScope => Object.hasOwn(LEGACY_SCOPES, scope);

/** The scopes a key's configured list grants: its own, with each legacy scope replaced by what it maps to. */
export function grantedScopes(configured: readonly (Scope | LegacyScope)[]): ReadonlySet<Scope> {
  return new Set(configured.flatMap((scope): readonly Scope[] => (isLegacyScope(scope) ? LEGACY_SCOPES[scope] : [scope])));
}

/** Whether a key granted `granted` may call a route requiring `required` (none: any key). */
export function allowsScope(granted: ReadonlySet<Scope>, required: Scope | undefined): boolean {
  return required === undefined || granted.has(required) || granted.has('admin');
}

/**
 * Whether a key limited to `namespaces` (account-id prefixes) may act on `accountId`. No list: every account
 * (a key of one product only, or an operator's). Prefixes compare exactly (case-sensitive, as account ids do).
 */
export function inNamespaces(namespaces: readonly string[] | undefined, accountId: string): boolean {
  return namespaces === undefined || namespaces.some((prefix) => accountId.startsWith(prefix));
}

/** The positions of the account ids outside the key's namespaces, in order (empty when all are inside). */
export function outsideNamespaces(namespaces: readonly string[] | undefined, accountIds: readonly string[]): number[] {
  if (namespaces === undefined) return [];
  return accountIds.flatMap((accountId, index) => (inNamespaces(namespaces, accountId) ? [] : [index]));
}

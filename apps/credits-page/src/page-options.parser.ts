/**
 * What a product passes to the page: attributes of the elements, or for the iframe page (index.html) query
 * parameters and the URL fragment (`#token=…`: a fragment never reaches a server or a Referer header). Each value
 * is checked here; an unusable one is dropped (the page falls back to its default) rather than trusted.
 */
export type Theme = 'light' | 'dark' | 'auto';

export interface PageOptions {
  token?: string;
  unit: string;
  logo?: string;
  accent?: string;
  theme: Theme;
  /** Where the ledger API is; '' = the page's own origin (the ledger serves the page at /portal/). */
  apiBase: string;
  /** Decimals shown at most (0-6). */
  decimals: number;
}

export const DEFAULT_UNIT = 'credits';

export function parseUnit(value: string | null | undefined): string {
  const unit = value?.trim() ?? '';
  return /^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,23}$/u.test(unit) ? unit : DEFAULT_UNIT;
}

/** A colour a product may set: hex, rgb()/hsl()/oklch()/… with plain arguments, or a named colour. */
export function parseColor(value: string | null | undefined): string | undefined {
  const color = value?.trim() ?? '';
  if (/^#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(color)) return color;
  if (/^(rgb|rgba|hsl|hsla|hwb|lab|lch|oklab|oklch)\([0-9a-z.,%/ +-]{1,60}\)$/i.test(color)) return color;
  if (/^[a-z]{3,20}$/i.test(color)) return color;
  return undefined;
}

/** An absolute http(s) URL, normalised (`HTTPS://X/` → `https://x/`); undefined for anything else (javascript:, garbage). */
export function httpUrl(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** An http(s) URL or a same-origin path for the logo; nothing that runs code (javascript:, data: other than images). */
export function parseLogo(value: string | null | undefined): string | undefined {
  const logo = value?.trim() ?? '';
  if (logo === '' || logo.length > 2048) return undefined;
  if (/^data:image\/(png|gif|jpeg|webp);base64,[A-Za-z0-9+/=]+$/.test(logo)) return logo;
  if (/^\/(?!\/)/.test(logo)) return logo;
  return httpUrl(logo);
}

export function parseTheme(value: string | null | undefined): Theme {
  return value === 'dark' || value === 'light' ? value : 'auto';
}

export function parseDecimals(value: string | null | undefined): number {
  return value !== null && value !== undefined && /^[0-6]$/.test(value) ? Number(value) : 6;
}

/** An http(s) origin (with an optional path) for the API, without a trailing slash; '' for the page's own origin. */
export function parseApiBase(value: string | null | undefined): string {
  const base = value?.trim() ?? '';
  return httpUrl(base)?.replace(/\/+$/, '') ?? '';
}

/** A portal token as it may appear: base64url segments and dots (a JWS), nothing else. */
export function parseToken(value: string | null | undefined): string | undefined {
  const token = value?.trim() ?? '';
  return /^[A-Za-z0-9._~+/=-]{8,4096}$/.test(token) ? token : undefined;
}

/**
 * What a portal token says of itself, read without checking it (the ledger does, on every request): the account
 * (`sub`) and when it stops being taken (`exp`), to warn the product before then and to keep what the page shows
 * when a new token for the same account replaces it. Undefined where the token does not say, or is not a JWT.
 */
export function tokenClaims(token: string): { accountId?: string; expiresAt?: Date } {
  const payload = token.split('.')[1];
  if (!payload) return {};
  try {
    const text = atob(payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '='));
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0)))) as { sub?: unknown; exp?: unknown };
    return {
      ...(typeof claims.sub === 'string' && { accountId: claims.sub }),
      ...(typeof claims.exp === 'number' && Number.isFinite(claims.exp) && { expiresAt: new Date(claims.exp * 1000) }),
    };
  } catch {
    return {};
  }
}

/** How long before its token's expiry an element says so (`tally-token-expiring`): time for the product to mint another. */
export const TOKEN_EXPIRING_LEAD_MS = 120_000;

/**
 * When to say a token expires soon: TOKEN_EXPIRING_LEAD_MS before its expiry, or halfway through what is left of a
 * shorter one, and at least 10 s after it was set. Never at once: a product that answers each notice with a token as
 * short (60 s) would otherwise mint and swap tokens as fast as its network allows.
 */
export function expiringNoticeAt(expiresAtMs: number, nowMs: number): number {
  // Not before 10 s either: a browser clock far ahead of the ledger's reads every new token as about to expire.
  return Math.max(nowMs + 10_000, expiresAtMs - Math.min(TOKEN_EXPIRING_LEAD_MS, Math.max(0, expiresAtMs - nowMs) / 2));
}

/**
 * A new token the product sends the iframe page with `postMessage({ type: 'tally-token', token }, <Tally's origin>)`
 * (before the old one expires: the page posts `tally-token-expiring` to it, expiringNoticeAt); undefined for any
 * other message.
 */
export function tokenFromMessage(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const { type, token } = data as { type?: unknown; token?: unknown };
  return type === 'tally-token' && typeof token === 'string' ? parseToken(token) : undefined;
}

/** The iframe page's options: `?unit=karma&logo=…&accent=%23…&theme=dark&decimals=2#token=…`. */
export function optionsFromUrl(href: string): PageOptions {
  const url = new URL(href);
  const query = url.searchParams;
  const fragment = new URLSearchParams(url.hash.replace(/^#/, ''));
  return {
    token: parseToken(fragment.get('token')),
    unit: parseUnit(query.get('unit')),
    logo: parseLogo(query.get('logo')),
    accent: parseColor(query.get('accent')),
    theme: parseTheme(query.get('theme')),
    // The iframe page talks to the origin that served it; only the web component takes another API base.
    apiBase: '',
    decimals: parseDecimals(query.get('decimals')),
  };
}

import { systemClock, type Clock, type HttpAppOptions } from '@tally/shared';
import { PortalTokenCodec } from '@tally/shared';
import type { LedgerConfig } from '../config/ledger.config';
import { registerPortalPage } from '../portal-page/portal-page.provider';

/** Injection token of the ledger's PortalTokenCodec, or null when PORTAL_TOKEN_SECRET is not set (portal off). */
export const PORTAL_TOKEN_CODEC = Symbol('PORTAL_TOKEN_CODEC');

export function portalTokenCodec(config: LedgerConfig): PortalTokenCodec | null {
  if (config.PORTAL_TOKEN_SECRET === undefined) return null;
  return new PortalTokenCodec({ secret: config.PORTAL_TOKEN_SECRET, previousSecret: config.PORTAL_TOKEN_PREVIOUS_SECRET });
}

/**
 * What the ledger's HTTP app takes for the portal: portal tokens, CORS, and the credits page at /portal/ (main.ts,
 * and tests that start the ledger in process).
 */
export function portalHttpOptions(config: LedgerConfig, clock: Clock = systemClock): Pick<HttpAppOptions, 'portalTokens' | 'corsOrigins' | 'plugins'> {
  const codec = portalTokenCodec(config);
  return {
    ...(codec && { portalTokens: { codec, clock } }),
    corsOrigins: config.PORTAL_ALLOWED_ORIGINS,
    plugins: (app, logger) => registerPortalPage(app, config, logger),
  };
}

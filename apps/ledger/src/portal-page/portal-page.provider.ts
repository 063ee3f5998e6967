import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply } from 'fastify';
import type { Logger } from '@tally/shared';
import { LedgerConfig } from '../config/ledger.config';

/** Where the credits page is served (README "Credits page"); `/portal` redirects here. */
export const PORTAL_PAGE_PREFIX = '/portal/';

/**
 * The iframe page may only load its own scripts and talk to this origin; products may frame it anywhere (the
 * token in its fragment is what grants access, and it can only read). Styles may be inline (Lit's and the theme's),
 * logos come from any http(s) origin.
 */
export const PORTAL_PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' https: http: data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
  'frame-ancestors *',
].join('; ');

/** Headers of one file of the page, by its path inside the build. */
export function portalPageHeaders(path: string): Record<string, string> {
  const common = { 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' };
  if (path.endsWith('.html')) return { ...common, 'Content-Security-Policy': PORTAL_PAGE_CSP, 'Cache-Control': 'no-cache' };
  // Scripts are loaded cross-origin by products that embed the web components (<script type="module"> fetches in
  // CORS mode); they are public files, so any origin may read them. Hashed assets never change.
  const cors = { 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin' };
  return /[/\\]assets[/\\]/.test(path) ? { ...common, ...cors, 'Cache-Control': 'public, max-age=31536000, immutable' } : { ...common, ...cors, 'Cache-Control': 'no-cache' };
}

/**
 * Serves the credits page (apps/credits-page, built by `npm run build:page`) at /portal/ from PORTAL_PAGE_DIR with
 * @fastify/static, outside Nest's routes, so no API key is asked for: the page is public, the API it calls is not
 * (the portal token in its fragment is sent as the bearer). A ledger without the build (PORTAL_PAGE_DIR empty, or no
 * index.html there) serves no page and says so once.
 *
 * Registered before Nest sets up its routes (bootstrapHttpApp's `plugins`, like CORS): registered later, from a
 * module's init hook, the plugin's context took over Fastify's content-type errors, and every POST answered an
 * unsupported media type in Fastify's own shape instead of Tally's `{code, message}`.
 */
export async function registerPortalPage(app: NestFastifyApplication, config: Pick<LedgerConfig, 'PORTAL_PAGE_DIR'>, logger: Logger): Promise<void> {
  const dir = config.PORTAL_PAGE_DIR;
  if (dir === '') return;
  const root = resolve(dir);
  if (!existsSync(join(root, 'index.html'))) {
    logger.warn({ root }, 'no credits page to serve at /portal/ (run npm run build:page, or set PORTAL_PAGE_DIR)');
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: PORTAL_PAGE_PREFIX,
    // The OpenAPI page registers @fastify/static too; only one may decorate the reply.
    decorateReply: false,
    index: ['index.html'],
    redirect: true,
    cacheControl: false,
    serveDotFiles: false,
    setHeaders: (reply: FastifyReply, path: string) => {
      for (const [name, value] of Object.entries(portalPageHeaders(path))) reply.header(name, value);
    },
  });
  logger.info({ root, prefix: PORTAL_PAGE_PREFIX }, 'serving the credits page');
}

import { PORTAL_PAGE_CSP, portalPageHeaders } from './portal-page.provider';

describe('credits page headers', () => {
  it('the HTML page gets the CSP and is revalidated; hashed assets are cached for good and readable cross-origin', () => {
    expect(portalPageHeaders('/app/apps/credits-page/dist/index.html')).toMatchObject({ 'Content-Security-Policy': PORTAL_PAGE_CSP, 'Cache-Control': 'no-cache' });
    expect(portalPageHeaders('/app/apps/credits-page/dist/assets/index-abc.js')).toMatchObject({
      'Cache-Control': 'public, max-age=31536000, immutable',
      'Access-Control-Allow-Origin': '*',
    });
    expect(portalPageHeaders('/app/apps/credits-page/dist/tally-elements.js')).toMatchObject({ 'Cache-Control': 'no-cache', 'Access-Control-Allow-Origin': '*' });
  });

  it('the page may talk only to its own origin and run only its own scripts', () => {
    expect(PORTAL_PAGE_CSP).toContain("script-src 'self'");
    expect(PORTAL_PAGE_CSP).toContain("connect-src 'self'");
  });
});

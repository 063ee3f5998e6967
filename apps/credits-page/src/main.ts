import './credits-page.component';
import { optionsFromUrl, tokenFromMessage } from './page-options.parser';

/**
 * The iframe page (index.html): `…/portal/?unit=karma&logo=…&accent=%23…&theme=dark#token=…`. The token is taken
 * from the fragment and the fragment removed from the address bar and history, so it is not copied with the URL.
 * Later tokens come from the embedding page by `postMessage` (a reload would lose what the page shows): it is told
 * `tally-token-expiring` / `tally-token-expired` with `{ accountId, expiresAt }`, and answers `{ type: 'tally-token', token }`.
 */
const options = optionsFromUrl(window.location.href);
if (window.location.hash) history.replaceState(null, '', window.location.pathname + window.location.search);

const page = document.createElement('tally-credits-page');
if (options.token) page.token = options.token;
page.unit = options.unit;
if (options.logo) page.logo = options.logo;
if (options.accent) page.accent = options.accent;
if (options.theme !== 'auto') page.theme = options.theme;
page.decimals = String(options.decimals);
document.documentElement.dataset.theme = options.theme;
document.getElementById('app')?.replaceChildren(page);

// Only the page that embeds this one speaks to it: it chose the first token (the fragment), so it may choose the next.
const embedder = window.parent !== window ? window.parent : undefined;
if (embedder) {
  for (const type of ['tally-token-expiring', 'tally-token-expired'] as const) {
    page.addEventListener(type, (event) => embedder.postMessage({ type, ...(event as CustomEvent<object>).detail }, '*'));
  }
  window.addEventListener('message', (event) => {
    const token = event.source === embedder ? tokenFromMessage(event.data) : undefined;
    if (token) page.token = token;
  });
}

import './credits-page.component';
import { optionsFromUrl } from './page-options.parser';

/**
 * The iframe page (index.html): `…/portal/?unit=karma&logo=…&accent=%23…&theme=dark#token=…`. The token is taken
 * from the fragment and the fragment removed from the address bar and history, so it is not copied with the URL.
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

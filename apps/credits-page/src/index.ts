// The web components, for a product's own page: <script type="module" src="https://tally…/portal/tally-elements.js">
// defines <tally-credits-page> and <tally-balance-badge> (README "Credits page").
export { TallyCreditsPage } from './credits-page.component';
export { TallyBalanceBadge } from './balance-badge.component';
export { TallyUsageChart } from './usage-chart.component';

import { css, html, nothing } from 'lit';
import { creditAlert, formatCredits } from './credits.model';
import { parseDecimals, parseUnit } from './page-options.parser';
import { PortalElement } from './portal-element.component';
import { themeStyles } from './theme.view';

/**
 * `<tally-balance-badge token="…" unit="credits" href="/credits">`: the balance for a header or sidebar, live,
 * coloured when low (below 20% / 5% of the allocation) or out of credits. With `href` it is a link to the
 * product's credits page. Same data and theme as `<tally-credits-page>`.
 */
export class TallyBalanceBadge extends PortalElement {
  static override properties = {
    ...PortalElement.properties,
    href: { type: String },
  };

  declare href: string | undefined;
  protected readonly missingTokenProblem = 'No portal token';

  static override styles = [
    themeStyles,
    css`
      :host {
        display: inline-block;
      }
      .badge {
        display: inline-flex;
        align-items: center;
        gap: 0.4em;
        padding: 0.3em 0.75em;
        border-radius: 999px;
        border: 1px solid var(--_border);
        background: var(--_surface);
        color: var(--_fg);
        font-size: 0.95em;
        text-decoration: none;
        white-space: nowrap;
      }
      a.badge:hover {
        border-color: var(--_accent);
      }
      .dot {
        width: 0.55em;
        height: 0.55em;
        border-radius: 50%;
        background: var(--_ok);
        flex: none;
      }
      .badge[data-alert='low-20'],
      .badge[data-alert='low-5'] {
        background: var(--_warning-bg);
        color: var(--_warning-fg);
        border-color: currentColor;
      }
      .badge[data-alert='low-20'] .dot,
      .badge[data-alert='low-5'] .dot {
        background: currentColor;
      }
      .badge[data-alert='insufficient'] {
        background: var(--_danger-bg);
        color: var(--_danger-fg);
        border-color: currentColor;
      }
      .badge[data-alert='insufficient'] .dot {
        background: currentColor;
      }
      .badge[data-live='false'] .dot {
        background: transparent;
        border: 1px solid currentColor;
      }
      .amount {
        font-weight: 650;
      }
    `,
  ];

  override render() {
    const unit = parseUnit(this.unit);
    const { balance, state } = this.snapshot;
    const alert = balance ? creditAlert(balance) : 'none';
    const amount = !balance ? '…' : balance.unlimited ? 'Unlimited' : formatCredits(balance.available, { maxDecimals: parseDecimals(this.decimals) });
    // A balance shown while the stream is down (reconnecting) or ended (an expired token) may be stale: it says so.
    const live = !balance || (state !== 'error' && state !== 'reconnecting');
    const stale = live ? '' : state === 'reconnecting' ? 'reconnecting' : 'not updated';
    const words =
      alert === 'insufficient' ? `Insufficient ${unit}` : alert === 'low-5' || alert === 'low-20' ? `Low ${unit}` : state === 'error' && !balance ? `${unit} unavailable` : '';
    const label = balance
      ? `${amount} ${unit} available${words ? `, ${words.toLowerCase()}` : ''}${stale ? `, ${stale}` : ''}`
      : state === 'error' ? `${unit} unavailable` : `Loading ${unit}`;
    const content = html`<span class="dot" aria-hidden="true"></span><span class="amount num" data-testid="badge-amount">${amount}</span>
      <span>${unit}</span>${words && alert !== 'none' ? html`<span class="visually-hidden">, ${words}</span>` : nothing}${
        stale ? html`<span class="muted" data-testid="badge-stale">(${stale})</span>` : nothing
      }`;
    // role=status: a screen reader hears the new balance when it changes, without moving focus.
    return this.href
      ? html`<a class="badge" part="badge" href=${this.href} data-alert=${alert} data-live=${String(live)} aria-label=${label} data-testid="badge">${content}</a>
          <span class="visually-hidden" role="status">${label}</span>`
      : html`<span class="badge" part="badge" role="status" data-alert=${alert} data-live=${String(live)} aria-label=${label} data-testid="badge">${content}</span>`;
  }
}

if (!customElements.get('tally-balance-badge')) customElements.define('tally-balance-badge', TallyBalanceBadge);

declare global {
  interface HTMLElementTagNameMap {
    'tally-balance-badge': TallyBalanceBadge;
  }
}

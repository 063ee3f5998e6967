import { css, html, nothing } from 'lit';
import { styleMap } from 'lit/directives/style-map.js';
import { allowanceUse, creditAlert, formatCredits, formatPermille, lowCreditSentence, mostCreditsFirst, type Balance, type CreditAlert } from './credits.model';
import { parseCredits } from '@tally/money';
import { PortalApi, PortalApiError, type PortalUsage, type TransactionItem } from './portal-api.client';
import { describe, type ConnectionSnapshot } from './portal-connection.service';
import { PortalElement } from './portal-element.component';
import { httpUrl, parseDecimals, parseLogo, parseUnit } from './page-options.parser';
import { resolveTimeZone, formatInstant } from './time-zone.model';
import { transactionCause, featureLabel } from './transaction-cause.view';
import { customRangeProblem, fillDays, lastDays, type RangeChoice } from './usage-range.model';
import { themeStyles } from './theme.view';
import './usage-chart.component';

const TRANSACTIONS_PAGE = 20;
/** Usage and history are read again this long after the live balance moved (one read for a burst of events). */
const REFRESH_AFTER_CHANGE_MS = 300;
/** A failed usage or history load is tried again after this long, doubling up to RETRY_MAX_MS (as the balance is). */
const RETRY_FIRST_MS = 3_000;
const RETRY_MAX_MS = 30_000;

const capitalize = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);
/**
 * `<tally-credits-page token="…" unit="credits" logo="…" accent="#…" theme="dark" api-base="https://…">`: the
 * whole credits page (README "Credits page"): the live balance, the allowance used this cycle and when it resets,
 * purchased and promotional credits apart, low-credit and "Insufficient Credits" states, usage by model, feature
 * and day for 7 / 30 days or custom days, the transaction history with each entry's cause, the CSV export, and
 * "Buy credits" / "Upgrade" links from the portal token.
 */
export class TallyCreditsPage extends PortalElement {
  static override properties = {
    ...PortalElement.properties,
    logo: { type: String },
    heading: { type: String },
    range: { state: true },
    customFrom: { state: true },
    customTo: { state: true },
    customProblem: { state: true },
    usage: { state: true },
    usageProblem: { state: true },
    transactions: { state: true },
    nextCursor: { state: true },
    historyProblem: { state: true },
    historyLoaded: { state: true },
    loadingOlder: { state: true },
    exportStatus: { state: true },
    exporting: { state: true },
    exportProblem: { state: true },
  };

  declare logo: string | undefined;
  declare heading: string | undefined;
  declare range: RangeChoice;
  declare customFrom: string;
  declare customTo: string;
  declare customProblem: string | undefined;
  declare usage: PortalUsage | undefined;
  declare usageProblem: string | undefined;
  declare transactions: TransactionItem[];
  declare nextCursor: string | null;
  declare historyProblem: string | undefined;
  /** A new token for the account shown: usage and history are read again once its session is in (reopening). */
  private reloadWithNewToken = false;
  /** The newest page of the history has been read for this account (until then an empty list means "not known yet"). */
  declare historyLoaded: boolean;
  declare loadingOlder: boolean;
  declare exportStatus: string;
  /** A CSV export is being prepared (the button waits for it). */
  declare exporting: boolean;
  /** Why the last export failed, shown beside the button until the next one is asked for. */
  declare exportProblem: string | undefined;

  protected readonly missingTokenProblem = 'This page needs a portal token (open it from your account).';
  private loadedFor?: string;
  private lastVersion = -1;
  private refreshTimer?: ReturnType<typeof setTimeout>;
  /** Loads that failed for a reason a retry may mend, tried again after RETRY_FIRST_MS, doubling up to RETRY_MAX_MS. */
  private readonly retries = new Map<'usage' | 'history', { timer: ReturnType<typeof setTimeout>; delayMs: number }>();
  private usageRequest = 0;
  /** Bumped when the transaction list starts over (a new account, the newest page reloaded): older answers are dropped. */
  private historyRequest = 0;

  constructor() {
    super();
    this.range = { kind: '30d' };
    // Filled in the account's zone when Custom is first chosen (the zone is the session's, not known yet).
    this.customFrom = '';
    this.customTo = '';
    this.transactions = [];
    this.nextCursor = null;
    this.historyLoaded = false;
    this.loadingOlder = false;
    this.exportStatus = '';
    this.exporting = false;
  }

  static override styles = [
    themeStyles,
    css`
      :host {
        display: block;
        background: var(--_bg);
        container-type: inline-size;
      }
      .page {
        max-width: 1080px;
        margin: 0 auto;
        padding: 1.25rem;
        display: grid;
        gap: 1.25rem;
      }
      header {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.75rem 1rem;
      }
      header img {
        height: 32px;
        width: auto;
      }
      h1 {
        font-size: 1.5rem;
        margin: 0;
        flex: 1 1 auto;
      }
      h2 {
        font-size: 1.15rem;
        margin: 0 0 0.75rem;
      }
      h3 {
        font-size: 1rem;
        margin: 0 0 0.5rem;
      }
      .live {
        font-size: 0.85rem;
        color: var(--_muted);
        display: inline-flex;
        align-items: center;
        gap: 0.35rem;
      }
      .live::before {
        content: '';
        width: 0.55rem;
        height: 0.55rem;
        border-radius: 50%;
        background: var(--_muted);
      }
      .live[data-state='live']::before {
        background: var(--_ok);
      }
      .actions {
        display: flex;
        gap: 0.5rem;
        flex-wrap: wrap;
      }
      .button,
      button {
        font: inherit;
        display: inline-flex;
        align-items: center;
        justify-content: center;
        min-height: 2.5rem;
        padding: 0.45rem 1rem;
        border-radius: 8px;
        border: 1px solid var(--_accent);
        background: transparent;
        color: var(--_accent);
        text-decoration: none;
        cursor: pointer;
      }
      .button.primary,
      button.primary {
        background: var(--_accent);
        color: var(--_accent-fg);
      }
      button[aria-pressed='true'] {
        background: var(--_accent);
        color: var(--_accent-fg);
      }
      button:disabled {
        opacity: 0.6;
        cursor: default;
      }
      section,
      .card {
        background: var(--_surface);
        border: 1px solid var(--_border);
        border-radius: var(--_radius);
        padding: 1rem 1.25rem;
      }
      .banner {
        border-radius: var(--_radius);
        padding: 0.85rem 1.25rem;
        border: 1px solid currentColor;
        display: flex;
        flex-wrap: wrap;
        gap: 0.5rem 1rem;
        align-items: center;
        justify-content: space-between;
      }
      .banner p {
        margin: 0.15rem 0 0;
      }
      .banner.warning {
        background: var(--_warning-bg);
        color: var(--_warning-fg);
      }
      .banner.danger {
        background: var(--_danger-bg);
        color: var(--_danger-fg);
      }
      .banner .button {
        color: inherit;
        border-color: currentColor;
      }
      .balance {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(220px, 1fr));
        gap: 1rem;
      }
      .big {
        font-size: 2.25rem;
        font-weight: 700;
        line-height: 1.1;
        margin: 0.25rem 0;
      }
      .muted {
        color: var(--_muted);
        font-size: 0.9rem;
        margin: 0;
      }
      .kinds {
        display: grid;
        gap: 0.35rem;
        margin: 0;
      }
      .kinds div {
        display: flex;
        justify-content: space-between;
        gap: 1rem;
      }
      .kinds dt {
        color: var(--_muted);
      }
      .kinds dd {
        margin: 0;
        font-weight: 600;
      }
      .bar {
        height: 0.75rem;
        border-radius: 999px;
        background: var(--_bg);
        border: 1px solid var(--_border);
        overflow: hidden;
        margin: 0.5rem 0;
      }
      .bar > div {
        height: 100%;
        background: var(--_accent);
      }
      .bar[data-alert='low-20'] > div,
      .bar[data-alert='low-5'] > div {
        background: var(--_warning-fg);
      }
      .bar[data-alert='insufficient'] > div {
        background: var(--_danger-fg);
      }
      .filters {
        display: flex;
        flex-wrap: wrap;
        gap: 0.5rem;
        align-items: end;
        margin-bottom: 1rem;
      }
      .filters [role='group'] {
        display: inline-flex;
        gap: 0.35rem;
      }
      form.custom {
        display: flex;
        flex-wrap: wrap;
        gap: 0.5rem;
        align-items: end;
      }
      label {
        display: grid;
        gap: 0.2rem;
        font-size: 0.85rem;
        color: var(--_muted);
      }
      input[type='date'] {
        font: inherit;
        min-height: 2.5rem;
        padding: 0 0.5rem;
        border-radius: 8px;
        border: 1px solid var(--_border);
        background: var(--_bg);
        color: var(--_fg);
      }
      .problem {
        color: var(--_danger-fg);
        background: var(--_danger-bg);
        padding: 0.35rem 0.6rem;
        border-radius: 6px;
        margin: 0.5rem 0;
      }
      .totals {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(160px, 1fr));
        gap: 1rem;
        margin-bottom: 1rem;
      }
      .totals .figure {
        font-size: 1.6rem;
        font-weight: 700;
      }
      .breakdowns {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(260px, 1fr));
        gap: 1rem;
        margin-top: 1rem;
      }
      .table-wrap {
        overflow-x: auto;
      }
      table {
        border-collapse: collapse;
        width: 100%;
      }
      th,
      td {
        text-align: left;
        padding: 0.45rem 0.5rem;
        border-bottom: 1px solid var(--_border);
        vertical-align: top;
      }
      th {
        font-weight: 600;
        color: var(--_muted);
        font-size: 0.85rem;
      }
      td.num,
      th.num {
        text-align: right;
        white-space: nowrap;
      }
      td.plus {
        color: var(--_ok);
      }
      .cause {
        color: var(--_muted);
        font-size: 0.88rem;
      }
      .row-end {
        display: flex;
        justify-content: space-between;
        align-items: center;
        gap: 0.75rem;
        flex-wrap: wrap;
      }
      footer {
        color: var(--_muted);
        font-size: 0.85rem;
      }
      @container (max-width: 560px) {
        .page {
          padding: 0.75rem;
        }
        .big {
          font-size: 1.8rem;
        }
        .when {
          display: none;
        }
      }
    `,
  ];

  // ── lifecycle ─────────────────────────────────────────────────────────────────────────────────────────────

  protected override closed(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    this.stopRetries();
  }

  private stopRetries(): void {
    for (const { timer } of this.retries.values()) clearTimeout(timer);
    this.retries.clear();
  }

  /**
   * After a failed load that a retry may mend (a 503 while the ledger restarts, the network): `load` again after
   * RETRY_FIRST_MS, doubling up to RETRY_MAX_MS while it keeps failing. An idle account has no balance change to
   * reload it, and the page said it would try again. A refused token or an unknown account is not retried.
   */
  private retryLater(what: 'usage' | 'history', error: unknown, load: () => Promise<void>): void {
    if (error instanceof PortalApiError && error.permanent) return;
    const previous = this.retries.get(what);
    if (previous) clearTimeout(previous.timer);
    const delayMs = previous ? Math.min(previous.delayMs * 2, RETRY_MAX_MS) : RETRY_FIRST_MS;
    const timer = setTimeout(() => void load(), delayMs);
    this.retries.set(what, { timer, delayMs });
  }

  /** A load succeeded: its next failure starts over from the first delay. */
  private loaded(what: 'usage' | 'history'): void {
    const pending = this.retries.get(what);
    if (pending) clearTimeout(pending.timer);
    this.retries.delete(what);
  }

  protected override opening(): void {
    // Answers still on their way for the last token's account are dropped when they arrive.
    this.usageRequest += 1;
    this.historyRequest += 1;
    this.loadedFor = undefined;
    this.lastVersion = -1;
    this.usage = undefined;
    this.transactions = [];
    this.nextCursor = null;
    this.historyLoaded = false;
    this.stopRetries();
  }

  /**
   * A new token for the account shown: usage and history stay on screen, and are read again with it once its session
   * is in (a load the old token had failed, an expired one's 401, would otherwise stay shown and never be retried).
   */
  protected override reopening(): void {
    this.stopRetries();
    this.reloadWithNewToken = true;
  }

  protected override onSnapshot(snapshot: ConnectionSnapshot): void {
    this.snapshot = snapshot;
    const accountId = snapshot.session?.accountId;
    if (!accountId || !snapshot.balance) return;
    if (this.reloadWithNewToken && this.loadedFor === accountId) {
      this.reloadWithNewToken = false;
      this.lastVersion = Math.max(this.lastVersion, snapshot.balance.version);
      void this.loadUsage();
      void this.loadNewTransactions();
    } else if (this.loadedFor !== accountId) {
      this.loadedFor = accountId;
      this.lastVersion = snapshot.balance.version;
      void this.loadUsage();
      void this.loadTransactions();
    } else if (snapshot.balance.version > this.lastVersion) {
      this.lastVersion = snapshot.balance.version;
      // Once per REFRESH_AFTER_CHANGE_MS while changes keep coming, the changes meanwhile in the same reload: waiting
      // again at every change left a busy account's usage and history as they were until its traffic paused.
      this.refreshTimer ??= setTimeout(() => {
        this.refreshTimer = undefined;
        void this.loadUsage();
        void this.loadNewTransactions();
      }, REFRESH_AFTER_CHANGE_MS);
    }
  }

  private get api(): PortalApi | undefined {
    return this.connection?.api;
  }

  private get accountId(): string | undefined {
    return this.snapshot.session?.accountId;
  }

  // ── data ─────────────────────────────────────────────────────────────────────────────────────────────────

  private async loadUsage(): Promise<void> {
    const { api, accountId } = this;
    if (!api || !accountId) return;
    const request = ++this.usageRequest;
    try {
      const usage = await api.usage(accountId, this.range, this.zone.timeZone);
      // A slower answer for a range the reader already left is dropped.
      if (request === this.usageRequest) {
        this.usage = usage;
        this.usageProblem = undefined;
        this.loaded('usage');
      }
    } catch (error) {
      if (request === this.usageRequest) {
        this.usageProblem = describe(error);
        this.retryLater('usage', error, () => this.loadUsage());
      }
    }
  }

  /**
   * One page of the transaction history: `use` runs, and a failure is shown, only if the list has not started over
   * since `request` (another account, the newest page reloaded): a page of the list as it was no longer follows it.
   */
  private async historyPage<T>(request: number, load: Promise<T>, use: (page: T) => unknown): Promise<void> {
    try {
      const page = await load;
      if (request === this.historyRequest) {
        await use(page);
        this.historyProblem = undefined; // any page read: the history is as the list shows it
      }
    } catch (error) {
      if (request === this.historyRequest) {
        this.historyProblem = describe(error);
        // The list is brought up to date again: the newest page (merged above what is shown, or the first one).
        this.retryLater('history', error, () => this.loadNewTransactions());
      }
    }
  }

  /** The newest page, replacing the list. */
  private async loadTransactions(): Promise<void> {
    const { api, accountId } = this;
    if (!api || !accountId) return;
    await this.historyPage(++this.historyRequest, api.transactions(accountId, undefined, TRANSACTIONS_PAGE), (page) => {
      this.transactions = page.items;
      this.nextCursor = page.nextCursor;
      this.historyLoaded = true;
      this.loaded('history');
    });
  }

  /** The newest page, merged above what is shown (older pages the reader opened stay). */
  private async loadNewTransactions(): Promise<void> {
    const { api, accountId } = this;
    if (!api || !accountId) return;
    if (this.transactions.length === 0) return this.loadTransactions();
    await this.historyPage(this.historyRequest, api.transactions(accountId, undefined, TRANSACTIONS_PAGE), (page) => {
      const newest = this.transactions[0].streamVersion;
      const fresh = page.items.filter((item) => item.streamVersion > newest);
      // More new entries than one page: start over rather than leave a gap.
      if (fresh.length === page.items.length && page.nextCursor) return this.loadTransactions();
      this.transactions = [...fresh, ...this.transactions];
      this.loaded('history');
    });
  }

  private async loadOlder(): Promise<void> {
    const { api, accountId } = this;
    if (!api || !accountId || !this.nextCursor) return;
    this.loadingOlder = true;
    try {
      await this.historyPage(this.historyRequest, api.transactions(accountId, this.nextCursor, TRANSACTIONS_PAGE), (page) => {
        this.transactions = [...this.transactions, ...page.items];
        this.nextCursor = page.nextCursor;
      });
    } finally {
      this.loadingOlder = false;
    }
  }

  /** Custom days, starting from the last 7 days of the account's zone the first time. */
  private chooseCustom(): void {
    if (this.customFrom === '' && this.customTo === '') ({ from: this.customFrom, to: this.customTo } = lastDays(new Date(), 7, this.zone.timeZone));
    this.choose({ kind: 'custom', from: this.customFrom, to: this.customTo });
  }

  private choose(range: RangeChoice): void {
    this.range = range;
    this.customProblem = range.kind === 'custom' ? customRangeProblem(range.from, range.to) : undefined;
    if (!this.customProblem) this.reloadUsage();
  }

  /** Another range: the last one's figures go (never shown under the new range's name while it loads or fails). */
  private reloadUsage(): void {
    this.usage = undefined;
    this.usageProblem = undefined;
    void this.loadUsage();
  }

  private applyCustom(event: Event): void {
    event.preventDefault();
    const problem = customRangeProblem(this.customFrom, this.customTo);
    this.customProblem = problem;
    if (problem) return;
    this.range = { kind: 'custom', from: this.customFrom, to: this.customTo };
    this.reloadUsage();
  }

  private async exportCsv(): Promise<void> {
    const { api, accountId } = this;
    if (!api || !accountId || this.exporting) return;
    this.exportStatus = 'Preparing the CSV…';
    this.exportProblem = undefined;
    this.exporting = true;
    try {
      const { blob, filename } = await api.exportCsv(accountId, this.range, this.zone.timeZone);
      const url = URL.createObjectURL(blob);
      const link = document.createElement('a');
      link.href = url;
      link.download = filename;
      link.style.display = 'none';
      this.renderRoot.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      this.exportStatus = `Downloaded ${filename}.`;
    } catch (error) {
      this.exportStatus = `The export failed: ${describe(error)}`;
      this.exportProblem = this.exportStatus;
    } finally {
      this.exporting = false;
    }
  }

  // ── rendering ────────────────────────────────────────────────────────────────────────────────────────────

  private get unitName(): string {
    return parseUnit(this.unit);
  }

  private fmt(micros: bigint, signed = false): string {
    return formatCredits(micros, { maxDecimals: parseDecimals(this.decimals), signed });
  }

  /** A balance: a negative one is a debt, rounded as `owed` is (the history's "balance after" agrees with the header). */
  private balanceAmount(micros: bigint): string {
    return micros < 0n ? `−${this.owed(-micros)}` : this.fmt(micros);
  }

  /** What is owed: rounded away from zero, so a debt never reads as less than it is. */
  private owed(micros: bigint): string {
    return formatCredits(micros, { maxDecimals: parseDecimals(this.decimals), rounding: 'away-from-zero' });
  }

  /** What was spent (usage totals): rounded up, as a debit in the history is (away from zero), so the two agree. */
  private spent(credits: string): string {
    return formatCredits(parseCredits(credits), { maxDecimals: parseDecimals(this.decimals), rounding: 'up' });
  }

  private get zone() {
    return resolveTimeZone(this.snapshot.session?.timeZone);
  }

  override render() {
    const unit = this.unitName;
    const { state, balance, session, problem } = this.snapshot;
    const logo = parseLogo(this.logo);
    const checkout = session?.rights.includes('purchase') ? httpUrl(session.links?.checkoutUrl) : undefined;
    const upgrade = httpUrl(session?.links?.upgradeUrl);
    const liveText = state === 'live' ? 'Live' : state === 'reconnecting' ? 'Reconnecting…' : state === 'loading' ? 'Loading…' : '';
    return html`
      <div class="page" part="page">
        <header>
          ${logo ? html`<img src=${logo} alt="" part="logo" />` : nothing}
          <h1>${this.heading ?? capitalize(unit)}</h1>
          ${liveText ? html`<span class="live" data-state=${state} role="status" data-testid="connection">${liveText}</span>` : nothing}
          <div class="actions">
            ${checkout ? html`<a class="button primary" href=${checkout} target="_top" data-testid="buy">Buy ${unit}</a>` : nothing}
            ${upgrade ? html`<a class="button" href=${upgrade} target="_top" data-testid="upgrade">Upgrade</a>` : nothing}
          </div>
        </header>
        ${state === 'error' ? html`<div class="banner danger" role="alert" data-testid="problem"><p>${problem}</p></div>` : nothing}
        ${state === 'empty' ? html`<div class="card" role="status"><p>No ${unit} on this account yet.</p></div>` : nothing}
        ${balance ? this.renderAlert(balance, unit, checkout, upgrade) : nothing}
        ${balance ? this.renderBalance(balance, unit) : state === 'loading' ? html`<div class="card" aria-busy="true">Loading your ${unit}…</div>` : nothing}
        ${balance ? this.renderUsage(unit) : nothing} ${balance ? this.renderHistory(unit) : nothing}
        ${balance ? html`<footer>Times are shown in ${this.zone.timeZone}${this.zone.fromAccount ? ' (your account’s time zone)' : ' (this browser’s time zone)'}.</footer>` : nothing}
      </div>
    `;
  }

  private renderAlert(balance: Balance, unit: string, checkout?: string, upgrade?: string) {
    const alert: CreditAlert = creditAlert(balance);
    if (alert === 'none') return nothing;
    const act = html`<div class="actions">
      ${checkout ? html`<a class="button" href=${checkout} target="_top">Buy ${unit}</a>` : nothing}
      ${upgrade ? html`<a class="button" href=${upgrade} target="_top">Upgrade</a>` : nothing}
    </div>`;
    if (alert === 'insufficient') {
      const owed = balance.overdraft > 0n ? html` You owe ${this.owed(balance.overdraft)} ${unit}, taken from the next ${unit} you get.` : nothing;
      return html`<div class="banner danger" role="alert" data-testid="insufficient" data-alert="insufficient">
        <div>
          <strong>Insufficient ${capitalize(unit)}</strong>
          <p>You have no ${unit} left, so actions that use ${unit} are refused until your allowance resets or you add ${unit}.${owed}</p>
        </div>
        ${act}
      </div>`;
    }
    const percent = alert === 'low-5' ? 5 : 20;
    return html`<div class="banner warning" role="status" data-testid="low-credit" data-alert=${alert}>
      <div>
        <strong>${alert === 'low-5' ? `Almost out of ${unit}` : `Running low on ${unit}`}</strong>
        <p>${lowCreditSentence(balance, percent, unit, (micros) => this.fmt(micros))}</p>
      </div>
      ${act}
    </div>`;
  }

  private renderBalance(balance: Balance, unit: string) {
    const use = allowanceUse(balance);
    const alert = creditAlert(balance);
    const reset = balance.cycleEnd ? formatInstant(balance.cycleEnd, this.zone.timeZone) : undefined;
    return html`
      <section aria-labelledby="balance-heading" class="balance" data-testid="balance">
        <div>
          <h2 id="balance-heading">Available</h2>
          <p class="big num" data-testid="available" aria-live="polite" aria-atomic="true">
            ${balance.unlimited ? 'Unlimited' : this.fmt(balance.available)} <span class="visually-hidden">${unit}</span>
          </p>
          <p class="muted">${balance.unlimited ? `your plan does not limit the ${unit} you use` : `${unit} you can use now`}</p>
          ${balance.held > 0n ? html`<p class="muted" data-testid="held">${this.fmt(balance.held)} reserved for answers in progress</p>` : nothing}
          ${balance.overdraft > 0n ? html`<p class="muted" data-testid="overdraft">${this.owed(balance.overdraft)} owed (overdraft)</p>` : nothing}
        </div>
        <div>
          <h3>Plan allowance this cycle</h3>
          ${balance.unlimited
            ? html`<p>Unlimited plan: usage is recorded, never limited.</p>`
            : balance.allocation > 0n
              ? html`
                  <div
                    class="bar"
                    role="progressbar"
                    aria-label="Allowance used this cycle"
                    aria-valuemin="0"
                    aria-valuemax="100"
                    aria-valuenow=${use.permille / 10}
                    aria-valuetext="${this.fmt(use.used)} of ${this.fmt(use.allocation)} ${unit} used (${formatPermille(use.permille)})"
                    data-alert=${alert}
                    data-testid="allowance-bar"
                  >
                    <div style=${styleMap({ width: `${use.permille / 10}%` })}></div>
                  </div>
                  <p class="num" data-testid="allowance-used">
                    ${this.fmt(use.used)} of ${this.fmt(use.allocation)} ${unit} used (${formatPermille(use.permille)}) · ${this.fmt(use.left)} left
                  </p>
                `
              : html`<p class="muted">No plan allowance.</p>`}
          ${reset
            ? html`<p class="muted" data-testid="reset">
                Resets <time datetime=${balance.cycleEnd ?? ''}>${reset.text}</time> <span data-testid="reset-zone">(${reset.zone === this.zone.timeZone ? reset.zone : `${reset.zone}, ${this.zone.timeZone}`})</span>
              </p>`
            : nothing}
        </div>
        <div>
          <h3>Outside the allowance</h3>
          <dl class="kinds">
            <div><dt>Purchased <span class="muted">(never expire)</span></dt><dd class="num" data-testid="purchased">${this.fmt(balance.purchased)}</dd></div>
            <div><dt>Promotional</dt><dd class="num" data-testid="promotional">${this.fmt(balance.promotional)}</dd></div>
            <div><dt>Allowance left</dt><dd class="num" data-testid="allowance-left">${this.fmt(balance.allowance)}</dd></div>
          </dl>
          <p class="muted" data-testid="spending-order">
            ${capitalize(unit)} that expire soonest are used first (your allowance ends when the cycle resets), then promotional
            ${unit} that do not expire, then purchased ${unit}.
          </p>
        </div>
      </section>
    `;
  }

  private renderUsage(unit: string) {
    const usage = this.usage;
    const range = this.range;
    const days = usage ? fillDays(usage.byDay, usage.from, usage.to, usage.timeZone) : [];
    const period = (kind: '7d' | '30d' | 'custom', label: string) =>
      html`<button
        type="button"
        aria-pressed=${range.kind === kind ? 'true' : 'false'}
        data-testid="range-${kind}"
        @click=${() => (kind === 'custom' ? this.chooseCustom() : this.choose({ kind }))}
      >
        ${label}
      </button>`;
    return html`
      <section aria-labelledby="usage-heading" data-testid="usage">
        <div class="row-end">
          <h2 id="usage-heading">Usage</h2>
          <div>
            <button type="button" @click=${() => this.exportCsv()} ?disabled=${this.exporting} aria-busy=${this.exporting ? 'true' : 'false'} data-testid="export">
              ${this.exporting ? 'Preparing CSV…' : 'Export CSV'}
            </button>
            <span class="visually-hidden" role="status">${this.exportProblem ? '' : this.exportStatus}</span>
          </div>
        </div>
        ${this.exportProblem ? html`<p class="problem" role="alert" data-testid="export-problem">${this.exportProblem}</p>` : nothing}
        <div class="filters">
          <div role="group" aria-label="Period">${period('7d', 'Last 7 days')} ${period('30d', 'Last 30 days')} ${period('custom', 'Custom')}</div>
          ${range.kind === 'custom'
            ? html`<form class="custom" @submit=${(e: Event) => this.applyCustom(e)} data-testid="custom-form">
                <label>From<input type="date" .value=${this.customFrom} @input=${(e: Event) => (this.customFrom = (e.target as HTMLInputElement).value)} data-testid="custom-from" required /></label>
                <label>To (included)<input type="date" .value=${this.customTo} @input=${(e: Event) => (this.customTo = (e.target as HTMLInputElement).value)} data-testid="custom-to" required /></label>
                <button type="submit" class="primary" data-testid="custom-apply">Apply</button>
              </form>`
            : nothing}
        </div>
        ${this.customProblem ? html`<p class="problem" role="alert">${this.customProblem}</p>` : nothing}
        ${this.usageProblem ? html`<p class="problem" role="alert">${this.usageProblem}</p>` : nothing}
        ${usage
          ? html`
              <div class="totals" data-testid="usage-totals" data-from=${usage.from} data-to=${usage.to}>
                <div>
                  <div class="muted">${capitalize(unit)} spent</div>
                  <div class="figure num" data-testid="total-credits">${this.spent(usage.totals.credits)}</div>
                </div>
                <div>
                  <div class="muted">Requests</div>
                  <div class="figure num" data-testid="total-requests">${usage.totals.requests}</div>
                </div>
              </div>
              <tally-usage-chart .days=${days} .unit=${unit} .decimals=${parseDecimals(this.decimals)} .timeZone=${usage.timeZone}></tally-usage-chart>
              ${usage.inUtcInstead ? html`<p class="muted" data-testid="usage-zone">Days are UTC days.</p>` : nothing}
              <div class="breakdowns">
                <div class="table-wrap">
                  <table data-testid="by-model">
                    <caption class="visually-hidden">Usage by model</caption>
                    <thead><tr><th scope="col">Model</th><th scope="col" class="num">${capitalize(unit)}</th><th scope="col" class="num">Requests</th></tr></thead>
                    <tbody>
                      ${usage.byModel.length === 0 ? html`<tr><td colspan="3" class="muted">No usage in this period.</td></tr>` : nothing}
                      ${mostCreditsFirst(usage.byModel).map(
                        (row) => html`<tr><th scope="row">${row.model}</th><td class="num">${this.spent(row.credits)}</td><td class="num">${row.requests}</td></tr>`,
                      )}
                    </tbody>
                  </table>
                </div>
                <div class="table-wrap">
                  <table data-testid="by-feature">
                    <caption class="visually-hidden">Usage by feature</caption>
                    <thead><tr><th scope="col">Feature</th><th scope="col" class="num">${capitalize(unit)}</th><th scope="col" class="num">Requests</th></tr></thead>
                    <tbody>
                      ${usage.byFeature.length === 0 ? html`<tr><td colspan="3" class="muted">No usage in this period.</td></tr>` : nothing}
                      ${mostCreditsFirst(usage.byFeature).map(
                        (row) =>
                          html`<tr><th scope="row">${featureLabel(row.feature)}</th><td class="num">${this.spent(row.credits)}</td><td class="num">${row.requests}</td></tr>`,
                      )}
                    </tbody>
                  </table>
                </div>
              </div>
            `
          : this.usageProblem
            ? nothing
            : html`<p aria-busy="true">Loading usage…</p>`}
      </section>
    `;
  }

  private renderHistory(unit: string) {
    const zone = this.zone.timeZone;
    const when = (iso: string) => new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short', timeZone: zone }).format(new Date(iso));
    return html`
      <section aria-labelledby="history-heading" data-testid="history">
        <h2 id="history-heading">Transactions</h2>
        ${this.historyProblem ? html`<p class="problem" role="alert">${this.historyProblem}</p>` : nothing}
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Transactions, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">What</th>
                <th scope="col" class="num">${capitalize(unit)}</th>
                <th scope="col" class="num when">Balance after</th>
              </tr>
            </thead>
            <tbody data-testid="transactions">
              ${this.transactions.length === 0
                ? this.historyLoaded
                  ? html`<tr><td colspan="4" class="muted">No transactions yet.</td></tr>`
                  : this.historyProblem
                    ? nothing
                    : html`<tr aria-busy="true"><td colspan="4" class="muted">Loading transactions…</td></tr>`
                : nothing}
              ${this.transactions.map((item) => {
                const cause = transactionCause(item, { unit, timeZone: this.zone.timeZone });
                const amount = item.amount === null ? undefined : parseCredits(item.amount);
                return html`<tr data-type=${item.type} data-kind=${cause.kind}>
                  <td><time datetime=${item.occurredAt}>${when(item.occurredAt)}</time></td>
                  <td>
                    <div>${cause.title}</div>
                    ${cause.cause ? html`<div class="cause" data-testid="cause">${cause.cause}</div>` : nothing}
                  </td>
                  <td class="num ${amount !== undefined && amount > 0n ? 'plus' : ''}">${amount === undefined ? '—' : this.fmt(amount, true)}</td>
                  <td class="num when">${this.balanceAmount(parseCredits(item.balanceAfter))}</td>
                </tr>`;
              })}
            </tbody>
          </table>
        </div>
        ${this.nextCursor
          ? html`<p><button type="button" @click=${() => this.loadOlder()} ?disabled=${this.loadingOlder} data-testid="older">
              ${this.loadingOlder ? 'Loading…' : 'Show older transactions'}
            </button></p>`
          : nothing}
      </section>
    `;
  }
}

if (!customElements.get('tally-credits-page')) customElements.define('tally-credits-page', TallyCreditsPage);

declare global {
  interface HTMLElementTagNameMap {
    'tally-credits-page': TallyCreditsPage;
  }
}

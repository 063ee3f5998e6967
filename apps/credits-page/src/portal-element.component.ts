import { LitElement, type PropertyValues } from 'lit';
import { PortalApi } from './portal-api.client';
import { portalConnections, type ConnectionSnapshot, type PortalConnection } from './portal-connection.service';
import { parseApiBase, parseColor, parseToken } from './page-options.parser';

/**
 * What `<tally-credits-page>` and `<tally-balance-badge>` share: the attributes a product sets (token, API base,
 * unit, accent, theme, decimals), the connection to the ledger (session, balance and its live stream) for a token and
 * API base, joined again when either changes and left when the element leaves the page (one connection per token and
 * API base in the document, whatever the number of elements: portalConnections), and the accent colour applied as
 * `--tally-accent`.
 */
export abstract class PortalElement extends LitElement {
  static override properties = {
    token: { type: String },
    apiBase: { type: String, attribute: 'api-base' },
    unit: { type: String },
    accent: { type: String },
    theme: { type: String, reflect: true },
    decimals: { type: String },
    snapshot: { state: true },
  };

  declare token: string | undefined;
  declare apiBase: string | undefined;
  declare unit: string | undefined;
  declare accent: string | undefined;
  declare theme: string | undefined;
  declare decimals: string | undefined;
  declare snapshot: ConnectionSnapshot;
  protected connection?: PortalConnection;
  /** Leaves the shared connection this element follows. */
  private leave?: () => void;
  /** The token and API base the open connection uses; another pair opens a new one. */
  private openedWith?: string;

  /** Shown when the element has no usable token. */
  protected abstract readonly missingTokenProblem: string;

  constructor() {
    super();
    this.snapshot = { state: 'idle' };
  }

  override connectedCallback(): void {
    super.connectedCallback();
    if (this.hasUpdated && this.openedWith === undefined) this.open();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.leaveConnection();
    this.openedWith = undefined;
    this.closed();
  }

  protected override updated(changed: PropertyValues<this>): void {
    if (this.openedWith !== `${this.token} ${this.apiBase}`) this.open();
    if (changed.has('accent')) {
      const accent = parseColor(this.accent);
      if (accent) this.style.setProperty('--tally-accent', accent);
      else this.style.removeProperty('--tally-accent');
    }
  }

  private open(): void {
    this.leaveConnection();
    this.openedWith = `${this.token} ${this.apiBase}`;
    this.opening();
    const token = parseToken(this.token);
    if (!token) {
      this.snapshot = { state: 'error', problem: this.missingTokenProblem };
      return;
    }
    const apiBase = parseApiBase(this.apiBase);
    const joined = portalConnections.join(`${token} ${apiBase}`, () => new PortalApi(token, apiBase), (snapshot) => this.onSnapshot(snapshot));
    this.connection = joined.connection;
    this.leave = joined.leave;
    // What the connection has shown so far (another element may have opened it), once `connection` is set.
    this.onSnapshot(joined.connection.snapshot);
  }

  private leaveConnection(): void {
    this.leave?.();
    this.leave = undefined;
    this.connection = undefined;
  }

  /** Every new session, balance or error of the connection. */
  protected onSnapshot(snapshot: ConnectionSnapshot): void {
    this.snapshot = snapshot;
  }

  /** Before a connection opens (for a new token or API base): forget what the last one loaded. Nothing by default. */
  protected opening(): void {
    return undefined;
  }

  /** The element left the page; its connection is closed. Nothing more by default. */
  protected closed(): void {
    return undefined;
  }
}

import { LitElement, type PropertyValues } from 'lit';
import { PortalApi } from './portal-api.client';
import { portalConnections, type ConnectionSnapshot, type PortalConnection } from './portal-connection.service';
import { expiringNoticeAt, parseApiBase, parseColor, parseToken, tokenClaims } from './page-options.parser';

/** The detail of `tally-token-expiring` and `tally-token-expired`: the token's account and expiry, as it says them. */
export interface TokenExpiryDetail {
  accountId?: string;
  expiresAt: string;
}

/**
 * What `<tally-credits-page>` and `<tally-balance-badge>` share: the attributes a product sets (token, API base,
 * unit, accent, theme, decimals), the connection to the ledger (session, balance and its live stream) for a token and
 * API base, joined again when either changes and left when the element leaves the page (one connection per token and
 * API base in the document, whatever the number of elements: portalConnections), and the accent colour applied as
 * `--tally-accent`. A portal token expires (60 s to a day): the element fires `tally-token-expiring` two minutes
 * before (halfway through a shorter one: expiringNoticeAt) and `tally-token-expired` at its expiry, both bubbling out of shadow roots, so
 * the product can mint another and set it; a new token for the same account keeps what the element shows while it
 * reconnects, where another account's starts afresh.
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
  /** The account of the token in use, as it says (tokenClaims): a new token for it keeps what the element shows. */
  private accountOfToken?: string;
  private expiryTimers: ReturnType<typeof setTimeout>[] = [];
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
    this.clearExpiry();
    this.accountOfToken = undefined;
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
    this.clearExpiry();
    this.openedWith = `${this.token} ${this.apiBase}`;
    const token = parseToken(this.token);
    const claims = token ? tokenClaims(token) : {};
    // A token for the account already shown (the product replacing one about to expire): what is shown stays.
    const sameAccount = claims.accountId !== undefined && claims.accountId === this.accountOfToken && this.snapshot.balance?.accountId === claims.accountId;
    this.accountOfToken = claims.accountId;
    if (sameAccount) this.reopening();
    else this.opening();
    if (!token) {
      this.snapshot = { state: 'error', problem: this.missingTokenProblem };
      return;
    }
    this.scheduleExpiry(claims);
    const apiBase = parseApiBase(this.apiBase);
    const seed = sameAccount ? this.snapshot.balance : undefined;
    const joined = portalConnections.join(`${token} ${apiBase}`, () => new PortalApi(token, apiBase), (snapshot) => this.onSnapshot(snapshot), seed);
    this.connection = joined.connection;
    this.leave = joined.leave;
    // What the connection has shown so far (another element may have opened it), once `connection` is set.
    this.onSnapshot(joined.connection.snapshot);
  }

  private scheduleExpiry({ accountId, expiresAt }: { accountId?: string; expiresAt?: Date }): void {
    if (!expiresAt) return;
    const detail: TokenExpiryDetail = { ...(accountId !== undefined && { accountId }), expiresAt: expiresAt.toISOString() };
    const fire = (type: string, atMs: number) =>
      this.expiryTimers.push(
        // setTimeout takes at most 2^31 - 1 ms (24.8 days); a token lasts a day at most.
        setTimeout(() => this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true })), Math.min(2 ** 31 - 1, Math.max(0, atMs - Date.now()))),
      );
    fire('tally-token-expiring', expiringNoticeAt(expiresAt.getTime(), Date.now()));
    fire('tally-token-expired', expiresAt.getTime());
  }

  private clearExpiry(): void {
    for (const timer of this.expiryTimers) clearTimeout(timer);
    this.expiryTimers = [];
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

  /** Before a connection opens with a new token for the account shown: what it shows stays. Nothing by default. */
  protected reopening(): void {
    return undefined;
  }

  /** The element left the page; its connection is closed. Nothing more by default. */
  protected closed(): void {
    return undefined;
  }
}

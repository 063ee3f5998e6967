import type { Balance } from './credits.model';
import { PortalApi, PortalApiError, type PortalSession } from './portal-api.client';

export type ConnectionState = 'idle' | 'loading' | 'live' | 'reconnecting' | 'empty' | 'error';

export interface ConnectionSnapshot {
  state: ConnectionState;
  session?: PortalSession;
  balance?: Balance;
  /** What went wrong, for people (the token expired, the ledger cannot be reached). */
  problem?: string;
}

const EMPTY_RETRY_MS = 10_000;
/** How long a document stays hidden before its live streams close (SharedConnections). */
export const HIDDEN_CLOSE_MS = 60_000;
const FIRST_RETRY_MS = 3_000;
const MAX_RETRY_MS = 30_000;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/**
 * What both elements share: the session of the portal token, then the balance kept live on the SSE stream. Each
 * element owns one; `start` opens it (again after a token change), `stop` closes the stream. Changes reach the
 * element through `onChange`, which it answers by rendering.
 */
export class PortalConnection {
  snapshot: ConnectionSnapshot = { state: 'idle' };
  private abort?: AbortController;

  constructor(
    readonly api: PortalApi,
    private readonly onChange: (snapshot: ConnectionSnapshot) => void,
  ) {}

  start(): void {
    this.stop();
    const abort = new AbortController();
    this.abort = abort;
    this.set({ state: 'loading' });
    void this.run(abort.signal);
  }

  stop(): void {
    this.abort?.abort();
    this.abort = undefined;
  }

  private set(change: Partial<ConnectionSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...change };
    this.onChange(this.snapshot);
  }

  /** A newer stream version replaces the balance; an older one (a late read racing the stream) is ignored. */
  private apply(balance: Balance, signal: AbortSignal): void {
    const current = this.snapshot.balance;
    if (current && current.accountId === balance.accountId && balance.version < current.version) return;
    this.setFor(signal, { balance });
  }

  /**
   * A change of the run that `signal` stops: nothing once it was stopped (a new token, the element left the page),
   * so an answer that arrives late never replaces what the next run shows.
   */
  private setFor(signal: AbortSignal, change: Partial<ConnectionSnapshot>): void {
    if (!signal.aborted) this.set(change);
  }

  /**
   * Follows the balance; a failure a retry may mend (the ledger restarting, a 503 or 429, the network) is shown and
   * tried again after 3 s, doubling up to 30 s, also before the first balance came; a refused token or an unknown
   * account (PortalApiError.permanent) ends it.
   */
  private async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.follow(signal, () => (failures = 0));
        return;
      } catch (error) {
        this.setFor(signal, { state: 'error', problem: describe(error) });
        if (error instanceof PortalApiError && error.permanent) return;
        await sleep(Math.min(FIRST_RETRY_MS * 2 ** Math.min(failures, 4), MAX_RETRY_MS), signal);
        failures += 1;
      }
    }
  }

  /** `onLive`: the balance was read and the stream is being followed (the failures before are over). */
  private async follow(signal: AbortSignal, onLive: () => void): Promise<void> {
    const session = this.snapshot.session ?? (await this.api.session());
    this.setFor(signal, { session });
    while (!signal.aborted) {
      try {
        this.apply(await this.api.balance(session.accountId), signal);
      } catch (error) {
        // An account with no event yet has no balance: say so, and look again now and then.
        if (error instanceof PortalApiError && error.code === 'ACCOUNT_NOT_FOUND') {
          this.setFor(signal, { state: 'empty' });
          await new Promise((resolve) => setTimeout(resolve, EMPTY_RETRY_MS));
          continue;
        }
        throw error;
      }
      this.setFor(signal, { state: 'live' });
      onLive();
      await this.api.watchBalance(session.accountId, (balance) => this.apply(balance, signal), {
        signal,
        onState: (state) => this.setFor(signal, { state, problem: undefined }),
      });
    }
  }
}

export function describe(error: unknown): string {
  if (error instanceof PortalApiError) {
    if (error.status === 401) return 'This link has expired or is not valid. Reload the page from your account to see your credits.';
    if (error.status === 403) return 'This link does not allow viewing these credits.';
    return error.message;
  }
  return 'The credits service cannot be reached right now. It is tried again in a moment.';
}

/**
 * The connections of the document, one per token and API base however many elements show it: a badge in the header
 * and the credits page below it follow one live stream, not two. The ledger takes a handful of live streams per
 * account (PORTAL_STREAMS_PER_ACCOUNT, 5); with one each, a few open tabs of a product page used them all and the
 * next tab's elements were refused (429 TOO_MANY_STREAMS) and stayed "reconnecting". The connection opens with its
 * first element and closes with its last; an element that joins reads what it has shown so far from `connection.snapshot`.
 */
export class SharedConnections {
  private readonly open = new Map<string, { connection: PortalConnection; listeners: Set<(snapshot: ConnectionSnapshot) => void> }>();
  private hiddenTimer?: ReturnType<typeof setTimeout>;
  /** The connections were stopped while the document was hidden; they open again when it is shown. */
  private paused = false;

  /**
   * A document hidden for `hiddenCloseMs` (a tab in the background) closes its streams, which the ledger counts per
   * account, and opens them again, reading the balance first, when it is shown: tabs left open in the background no
   * longer hold the streams a tab in use needs.
   */
  constructor(
    private readonly page: Pick<Document, 'visibilityState' | 'addEventListener'> | undefined = globalThis.document,
    private readonly hiddenCloseMs = HIDDEN_CLOSE_MS,
  ) {
    page?.addEventListener('visibilitychange', () => this.visibilityChanged());
  }

  private visibilityChanged(): void {
    if (this.page?.visibilityState === 'hidden') {
      this.hiddenTimer ??= setTimeout(() => {
        this.hiddenTimer = undefined;
        this.paused = true;
        for (const { connection } of this.open.values()) connection.stop();
      }, this.hiddenCloseMs);
      return;
    }
    clearTimeout(this.hiddenTimer);
    this.hiddenTimer = undefined;
    if (!this.paused) return;
    this.paused = false;
    for (const { connection } of this.open.values()) connection.start();
  }

  /**
   * Follows the connection for `key`, opened with `api` when none is; returns the connection and how to leave it.
   * `seed`: the balance a connection opened now shows until it has read its own (a new token for the same account).
   */
  join(key: string, api: () => PortalApi, listener: (snapshot: ConnectionSnapshot) => void, seed?: Balance): { connection: PortalConnection; leave: () => void } {
    let shared = this.open.get(key);
    if (!shared) {
      const listeners = new Set<(snapshot: ConnectionSnapshot) => void>();
      const connection = new PortalConnection(api(), (snapshot) => {
        for (const each of [...listeners]) each(snapshot);
      });
      if (seed) connection.snapshot = { state: 'idle', balance: seed };
      shared = { connection, listeners };
      this.open.set(key, shared);
      listeners.add(listener);
      // Joined in a document hidden long enough to have closed its streams: opened when it is shown.
      if (!this.paused) connection.start();
    } else {
      shared.listeners.add(listener);
    }
    const joined = shared;
    let left = false;
    return {
      connection: joined.connection,
      leave: () => {
        if (left) return;
        left = true;
        joined.listeners.delete(listener);
        if (joined.listeners.size > 0 || this.open.get(key) !== joined) return;
        this.open.delete(key);
        joined.connection.stop();
      },
    };
  }

  /** Connections open now (for tests). */
  get size(): number {
    return this.open.size;
  }
}

/** The document's connections (see SharedConnections). */
export const portalConnections = new SharedConnections();


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

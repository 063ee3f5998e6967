import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { Notification, Pool, PoolClient } from 'pg';
import { backoffDelayMs } from '@tally/shared';
import { PG_POOL } from '../../database/tokens.provider';
import { BALANCE_CHANGED_CHANNEL, changedAccounts } from '@tally/ledger-read-models';
import { BalanceReadRepository, type ProjectedBalance } from './balance.repository';

export type BalanceListener = (balance: ProjectedBalance) => void;

const RECONNECT_DELAY_MS = 1_000;
/**
 * How often the LISTEN connection is asked whether it still listens, and how long it has to answer. A connection can
 * die without an error reaching the client (a NAT or load balancer dropping an idle flow, a partition, a frozen
 * server); nothing would then arrive while the streams' heartbeats went on, showing an old balance as live.
 */
const PROBE_INTERVAL_MS = 5_000;
const PROBE_TIMEOUT_MS = 3_000;
/** Changed accounts are read this many to a query. */
const READ_CHUNK = 500;
/**
 * After a failed read its accounts are read again, after this long, doubled at each failure in a row up to
 * MAX_REREAD_DELAY_MS, with jitter: every replica's streams do not come back on the same beat.
 */
const REREAD_DELAY_MS = 1_000;
const MAX_REREAD_DELAY_MS = 15_000;

/**
 * One LISTEN connection per process, fanned out to the live balance streams of each account. A notification
 * only says "these accounts changed": the followed ones are read READ_CHUNK to a query, one query at a time, and
 * each balance is handed to every subscriber of its account. One read at a time (an account changed during a read is
 * read again after it), so subscribers see versions in order, and a reconnect that re-reads every followed account
 * costs a query per READ_CHUNK of them, not one each on the pool the commands use.
 * NOTIFY is database-wide; notifications for accounts nobody here follows cost nothing. The connection is probed
 * (PROBE_INTERVAL_MS): one that does not answer in time, or no longer listens, is treated as lost.
 */
@Injectable()
export class BalanceNotifications implements OnApplicationShutdown {
  private readonly logger = new Logger(BalanceNotifications.name);
  private readonly subscribers = new Map<string, Set<BalanceListener>>();
  /** Followed accounts that changed since their last read, waiting for the next. */
  private readonly pending = new Set<string>();
  /** The reads under way (one query at a time), while there are. */
  private draining: Promise<void> | undefined;
  /** Set while reads wait to be tried again after a failure; failures in a row set the wait. */
  private rereadTimer: NodeJS.Timeout | undefined;
  private failuresInARow = 0;
  private client: PoolClient | undefined;
  private connecting: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    private readonly balances: BalanceReadRepository,
  ) {}

  /** Resolves once LISTEN is active, so a balance read after it cannot miss a change. */
  async subscribe(accountId: string, listener: BalanceListener): Promise<() => void> {
    let listeners = this.subscribers.get(accountId);
    if (!listeners) this.subscribers.set(accountId, (listeners = new Set()));
    listeners.add(listener);
    try {
      await this.connect();
    } catch (error) {
      this.remove(accountId, listener);
      throw error;
    }
    return () => this.remove(accountId, listener);
  }

  subscriberCount(): number {
    let count = 0;
    for (const listeners of this.subscribers.values()) count += listeners.size;
    return count;
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.rereadTimer);
    this.pending.clear();
    this.subscribers.clear();
    await Promise.all([this.draining, this.disconnect()]);
  }

  private remove(accountId: string, listener: BalanceListener): void {
    const listeners = this.subscribers.get(accountId);
    listeners?.delete(listener);
    if (listeners?.size === 0) this.subscribers.delete(accountId);
    // The connection stays: reconnecting per page view would cost more than one idle connection.
  }

  private connect(): Promise<void> {
    if (this.client) return Promise.resolve();
    this.connecting ??= (async () => {
      const client = await this.pool.connect();
      try {
        client.on('notification', (message: Notification) => {
          if (message.channel !== BALANCE_CHANGED_CHANNEL || !message.payload) return;
          for (const accountId of changedAccounts(message.payload)) this.changed(accountId);
        });
        client.on('error', (error: Error) => this.lost(client, error));
        await client.query(`LISTEN ${BALANCE_CHANGED_CHANNEL}`);
        this.client = client;
        this.probe(client);
      } catch (error) {
        client.release(error as Error);
        throw error;
      }
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** Until the connection is dropped: every PROBE_INTERVAL_MS, is it still there and still listening? */
  private probe(client: PoolClient): void {
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      if (this.client !== client) return;
      client.query<{ channel: string }>({ text: 'SELECT pg_listening_channels() AS channel', query_timeout: PROBE_TIMEOUT_MS } as never).then(
        ({ rows }) => {
          if (rows.some((row) => row.channel === BALANCE_CHANGED_CHANNEL)) this.probe(client);
          else this.lost(client, new Error(`the connection no longer listens on ${BALANCE_CHANGED_CHANNEL}`));
        },
        (error: Error) => this.lost(client, error),
      );
    }, PROBE_INTERVAL_MS);
    this.probeTimer.unref();
  }

  private async disconnect(): Promise<void> {
    clearTimeout(this.probeTimer);
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    client.removeAllListeners('notification');
    await client.query(`UNLISTEN ${BALANCE_CHANGED_CHANNEL}`).then(
      () => client.release(),
      (error: Error) => client.release(error),
    );
  }

  /** The connection broke: drop it, reconnect, and re-read every followed account (changes may have been missed). */
  private lost(client: PoolClient, error: Error): void {
    if (this.client !== client) return;
    this.logger.warn({ err: error.message }, 'balance LISTEN connection lost; reconnecting');
    this.client = undefined;
    client.removeAllListeners('notification');
    client.release(error);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closed || this.subscribers.size === 0) return;
      this.connect().then(
        () => {
          for (const accountId of this.subscribers.keys()) this.changed(accountId);
        },
        (error: Error) => {
          this.logger.warn({ err: error.message }, 'balance LISTEN reconnect failed');
          this.scheduleReconnect();
        },
      );
    }, RECONNECT_DELAY_MS);
    this.reconnectTimer.unref();
  }

  private changed(accountId: string): void {
    if (!this.subscribers.has(accountId)) return;
    this.pending.add(accountId);
    this.drain();
  }

  /**
   * Reads the pending accounts, a chunk at a time, until none is left, the reads fail or the service stops; from the
   * next turn of the event loop, so the accounts a burst of notifications (or a reconnect) names share the reads.
   */
  private drain(): void {
    if (this.draining || this.rereadTimer || this.closed) return;
    this.draining = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.readPending()).finally(() => {
      this.draining = undefined;
      if (this.pending.size > 0) this.drain(); // changed while the last read was being handed out
    });
  }

  private async readPending(): Promise<void> {
    while (this.pending.size > 0 && !this.closed) {
      const chunk = [...this.pending].slice(0, READ_CHUNK);
      for (const accountId of chunk) this.pending.delete(accountId);
      let balances: Map<string, ProjectedBalance>;
      try {
        balances = await this.balances.findMany(chunk);
        this.failuresInARow = 0;
      } catch (error) {
        // Read again later, with the accounts that change meanwhile: the streams would otherwise keep the old balance
        // until each account's next change.
        for (const accountId of chunk) if (this.subscribers.has(accountId)) this.pending.add(accountId);
        this.failuresInARow += 1;
        const delayMs = backoffDelayMs(REREAD_DELAY_MS, MAX_REREAD_DELAY_MS, this.failuresInARow);
        this.logger.warn({ accounts: this.pending.size, attempt: this.failuresInARow, delayMs, err: (error as Error).message }, 'could not read balances for live streams; reading again shortly');
        this.rereadTimer = setTimeout(() => {
          this.rereadTimer = undefined;
          this.drain();
        }, delayMs);
        this.rereadTimer.unref();
        return;
      }
      for (const [accountId, balance] of balances) {
        for (const listener of this.subscribers.get(accountId) ?? []) {
          try {
            listener(balance);
          } catch (error) {
            this.logger.warn({ accountId, err: (error as Error).message }, 'live balance subscriber failed');
          }
        }
      }
    }
  }
}

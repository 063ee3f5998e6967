import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { Notification, Pool, PoolClient } from 'pg';
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
/** A balance read that failed is tried again after this long (while the account has streams). */
const REREAD_DELAY_MS = 1_000;

/**
 * One LISTEN connection per process, fanned out to the live balance streams of each account. A notification
 * only says "these accounts changed": each followed account's balance is read once and handed to every
 * subscriber of the account. Reads of one account never overlap, so subscribers see versions in order.
 * NOTIFY is database-wide; notifications for accounts nobody here follows cost nothing. The connection is probed
 * (PROBE_INTERVAL_MS): one that does not answer in time, or no longer listens, is treated as lost.
 */
@Injectable()
export class BalanceNotifications implements OnApplicationShutdown {
  private readonly logger = new Logger(BalanceNotifications.name);
  private readonly subscribers = new Map<string, Set<BalanceListener>>();
  /** Accounts being read now; `true` = another notification came meanwhile, read again afterwards. */
  private readonly refreshing = new Map<string, boolean>();
  private client: PoolClient | undefined;
  private connecting: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  /** Accounts whose last read failed, by the timer that reads them again. */
  private readonly rereads = new Map<string, NodeJS.Timeout>();
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
    for (const timer of this.rereads.values()) clearTimeout(timer);
    this.rereads.clear();
    this.subscribers.clear();
    await this.disconnect();
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
    if (this.refreshing.has(accountId)) {
      this.refreshing.set(accountId, true);
      return;
    }
    this.refreshing.set(accountId, false);
    void this.refresh(accountId);
  }

  /** After a failed read: the streams would otherwise keep the old balance until the account's next change. */
  private rereadLater(accountId: string): void {
    if (this.closed || this.rereads.has(accountId)) return;
    const timer = setTimeout(() => {
      this.rereads.delete(accountId);
      this.changed(accountId);
    }, REREAD_DELAY_MS);
    timer.unref();
    this.rereads.set(accountId, timer);
  }

  private async refresh(accountId: string): Promise<void> {
    try {
      for (;;) {
        const balance = await this.balances.find(accountId).catch((error: Error) => {
          this.logger.warn({ accountId, err: error.message }, 'could not read balance for live streams; reading again shortly');
          this.rereadLater(accountId);
          return undefined;
        });
        if (balance) {
          for (const listener of this.subscribers.get(accountId) ?? []) {
            try {
              listener(balance);
            } catch (error) {
              this.logger.warn({ accountId, err: (error as Error).message }, 'live balance subscriber failed');
            }
          }
        }
        if (!this.refreshing.get(accountId)) break;
        this.refreshing.set(accountId, false);
      }
    } finally {
      this.refreshing.delete(accountId);
    }
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import DataLoader from 'dataloader';
import { LRUCache } from 'lru-cache';
import type { PoolClient } from 'pg';
import {
  EventStoreError, type AppendRequest, type EventStore, type NewEvent, type RecordedEvent, type UnitOfWork,
} from '@tally/event-store';
import {
  balanceOf, decideWithStates, evolve, initialState, isAccountError, type AccountCommand, type AccountEvent, type AccountState,
} from '@tally/ledger-domain';
import { CLOCK, carrierOf, type Clock } from '@tally/shared';
import { LedgerConfig } from '../config/ledger.config';
import { EVENT_STORE } from '../database/tokens.provider';
import { accountCacheHits, accountCacheMisses, timedAppend } from './account.metrics';
import { accountIdOfStream, accountStreamId, decodeEvent, snapshotOf, toNewEvent, type EventAudit } from '@tally/ledger-events';

export interface LoadedAccount {
  state: AccountState;
  /** The stream version this state folds (0 = never seen). */
  version: number;
}

export interface Decision {
  accountId: string;
  events: AccountEvent[];
  state: AccountState;
  version: number;
}

/** One command of a consumer batch. */
export interface BatchCommand {
  command: AccountCommand;
  commandKey: string;
  /** Who sent it and the trace it continues, recorded on its events' metadata (EventAudit). */
  audit?: EventAudit;
}

/** A command of the batch the domain refused (its index in the batch): it changed nothing; the caller decides what to do with it. */
export interface Refusal {
  index: number;
  code: string;
  message: string;
  details: unknown;
}

export interface BatchOutcome {
  /** The states to cache once the consumer's transaction has committed. */
  saved: Map<string, LoadedAccount>;
  refused: Refusal[];
}

const MAX_CONFLICT_RETRIES = 8;
/**
 * Between attempts of an HTTP command that lost a race: a growing, jittered pause, so a command competing with a
 * consumer appending to the same account in big batches (e.g. catching up after an outage) gets a window.
 */
const conflictPauseMs = (attempt: number): number => attempt * 10 + Math.random() * attempt * 20;
const EMPTY: LoadedAccount = Object.freeze({ state: initialState, version: 0 });

/**
 * Loads and saves accounts (event streams) for the ledger. Decided state is kept in a bounded LRU cache; every
 * use first compares the cached version with the store's (one query for a whole batch), so the cache stays
 * right across partition rebalances, other instances, HTTP commands and rolled-back transactions.
 *
 * HTTP requests check their versions through a DataLoader: every request the process read in one turn of the
 * event loop shares one query (dispatched on setImmediate, never cached), so a burst costs one round trip
 * instead of one per request, and each answer is still as fresh as the moment it was asked.
 */
/**
 * A command that depends on the instant it is decided at (a hold's expiry is its TTL from the decision): built
 * again at each attempt's instant, so a decision that comes late (a lost race, a slow database) is not refused
 * for an instant taken before it.
 */
export interface CommandAt {
  accountId: string;
  at: (now: Date) => AccountCommand;
}

@Injectable()
export class AccountRepository {
  private readonly cache: LRUCache<string, LoadedAccount>;
  private readonly versions: DataLoader<string, number>;

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    config: LedgerConfig,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.cache = new LRUCache({ max: config.ACCOUNT_CACHE_SIZE });
    this.versions = new DataLoader(
      async (accountIds) => {
        const stored = await this.store.streamVersions(accountIds.map(accountStreamId));
        return accountIds.map((accountId) => stored.get(accountStreamId(accountId)) ?? 0);
      },
      { cache: false, batchScheduleFn: (dispatch) => setImmediate(dispatch), maxBatchSize: 1_000 },
    );
  }

  async load(accountId: string): Promise<LoadedAccount> {
    return (await this.loadMany([accountId])).get(accountId) as LoadedAccount;
  }

  async loadMany(accountIds: string[], unitOfWork?: UnitOfWork): Promise<Map<string, LoadedAccount>> {
    const versions = await this.storedVersions(accountIds, unitOfWork);
    const loaded = new Map<string, LoadedAccount>();
    const behind: { accountId: string; from: LoadedAccount }[] = [];
    let hits = 0;
    for (const accountId of new Set(accountIds)) {
      const cached = this.cache.get(accountId) ?? EMPTY;
      const stored = versions.get(accountId) ?? 0;
      if (stored === cached.version) {
        loaded.set(accountId, cached);
        if (cached !== EMPTY) hits += 1;
      }
      // The cache is ahead of the store only after a rolled-back write: start over from the stream.
      else behind.push({ accountId, from: stored < cached.version ? EMPTY : cached });
    }
    // The accounts the cache is behind on (evicted, another instance wrote, a restart): their new events in one read.
    if (behind.length > 0) {
      const read = await this.store.readStreams(behind.map(({ accountId, from }) => ({ streamId: accountStreamId(accountId), fromVersion: from.version + 1 })));
      for (const { accountId, from } of behind) loaded.set(accountId, foldStored(from, read.get(accountStreamId(accountId)) ?? []));
    }
    for (const [accountId, current] of loaded) this.cache.set(accountId, current);
    // Once per load, not per account (the consumer loads thousands of accounts a second).
    if (hits > 0) accountCacheHits.inc(hits);
    if (loaded.size > hits) accountCacheMisses.inc(loaded.size - hits);
    return loaded;
  }

  /**
   * HTTP path: decide one command and append it; retried from fresh state on a concurrent write. `actor` (the API
   * key's name) and the active request's id and trace context are recorded on the events' metadata.
   */
  async execute(commandOrAt: AccountCommand | CommandAt, commandKey: string, actor?: string): Promise<Decision> {
    const audit: EventAudit = { ...(actor !== undefined && { actor }), ...carrierOf() };
    for (let attempt = 1; ; attempt++) {
      const account = await this.load(commandOrAt.accountId);
      const now = this.clock.now();
      const command = 'at' in commandOrAt ? commandOrAt.at(now) : commandOrAt;
      const { events, newEvents, state } = this.decideWithSnapshots(account.state, command, commandKey, now, audit);
      if (events.length === 0) return { accountId: command.accountId, events, state: account.state, version: account.version };
      try {
        const [result] = await timedAppend('command', () =>
          this.store.appendMany([{ streamId: accountStreamId(command.accountId), expectedVersion: account.version, events: newEvents }]),
        );
        const saved = { state, version: result.nextExpectedVersion };
        this.cache.set(command.accountId, saved);
        return { accountId: command.accountId, events, ...saved };
      } catch (error) {
        const conflict = error instanceof EventStoreError && error.code === 'WRONG_EXPECTED_VERSION';
        // A lost race leaves the cached state a true prefix of the stream: the next attempt reads only what the
        // winner appended. Dropping it made every retry re-read the whole stream, which against a consumer
        // catching up on a big backlog always lost again (grants failed for as long as the catch-up lasted).
        if (!conflict) this.cache.delete(command.accountId);
        if (!conflict || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
      await sleep(conflictPauseMs(attempt));
    }
  }

  /**
   * The consumer's transaction (which stores its Kafka offsets) as a unit of work of the event store, when the
   * store can share it; undefined when it cannot (EventStoreDB, EVENT_STORE_TRANSACTIONAL=false).
   */
  joinTransaction(tx: PoolClient): UnitOfWork | undefined {
    return this.store.joinTransaction?.(tx);
  }

  /** Whether the consumer's appends commit with its offsets (true) or before them (the idempotent path). */
  sharesTransactions(): boolean {
    return this.store.joinTransaction !== undefined;
  }

  /**
   * Consumer path: decides the commands in order, per account, and appends all resulting events in one
   * appendMany. With a unit of work the append commits with the consumer's offsets; without one it commits now,
   * before the offset is stored, and a redelivery is made harmless by deterministic event ids, expected versions
   * and the decider's idempotency (README, "Money and exactly-once"). Returns the states to cache once the
   * consumer's transaction has committed, and the commands the domain refused.
   */
  async executeBatch(commands: BatchCommand[], unitOfWork: UnitOfWork | undefined): Promise<BatchOutcome> {
    const accountIds = [...new Set(commands.map((c) => c.command.accountId))];
    const accounts = await this.loadMany(accountIds, unitOfWork);
    const appends = new Map<string, AppendRequest>();
    const now = this.clock.now();
    const refused: Refusal[] = [];
    for (const [index, { command, commandKey, audit }] of commands.entries()) {
      const account = accounts.get(command.accountId) as LoadedAccount;
      let decided: ReturnType<AccountRepository['decideWithSnapshots']>;
      try {
        decided = this.decideWithSnapshots(account.state, command, commandKey, now, audit);
      } catch (error) {
        if (isAccountError(error)) {
          refused.push({ index, code: error.code, message: error.message, details: error.details });
          continue;
        }
        throw error;
      }
      if (decided.events.length === 0) continue;
      const append = appends.get(command.accountId) ?? { streamId: accountStreamId(command.accountId), expectedVersion: account.version, events: [] as NewEvent[] };
      append.events.push(...decided.newEvents);
      appends.set(command.accountId, append);
      accounts.set(command.accountId, { state: decided.state, version: account.version + decided.events.length });
    }
    // No savepoint: any failure rolls back the consumer's whole transaction, offsets included.
    if (appends.size > 0) await timedAppend('batch', () => this.store.appendMany([...appends.values()], unitOfWork, { savepoint: false }));
    return { saved: new Map([...accounts].filter(([accountId]) => appends.has(accountId))), refused };
  }

  /** After the consumer's transaction committed: its states become the cached truth. */
  remember(saved: Map<string, LoadedAccount>): void {
    for (const [accountId, account] of saved) this.cache.set(accountId, account);
  }

  forget(accountIds: Iterable<string>): void {
    for (const accountId of accountIds) this.cache.delete(accountId);
  }

  /** The account's events up to an instant, folded: the balance as it was then. */
  async loadAsOf(accountId: string, at: Date): Promise<LoadedAccount> {
    const events = await this.store.readStream(accountStreamId(accountId));
    // A prefix of the stream: stop at the first event recorded after `at` (recorded_at is a transaction's start
    // time, so a later version can carry an earlier time; folding around it would give a state that never was).
    const end = events.findIndex((stored) => stored.recordedAt.getTime() > at.getTime());
    return foldStored(EMPTY, end === -1 ? events : events.slice(0, end));
  }

  private decideWithSnapshots(state: AccountState, command: AccountCommand, commandKey: string, now: Date, audit?: EventAudit) {
    const { events, states } = decideWithStates(command, state, { now });
    const newEvents = events.map((event, index) => toNewEvent(command.accountId, commandKey, index, event, snapshotOf(balanceOf(states[index])), audit));
    return { events, newEvents, state: states.at(-1) ?? state };
  }

  /**
   * Current stream versions, from the store. In the consumer's unit of work the query runs in it; otherwise it
   * joins the event loop turn's shared query.
   */
  private async storedVersions(accountIds: string[], unitOfWork?: UnitOfWork): Promise<Map<string, number>> {
    if (unitOfWork) {
      const stored = await this.store.streamVersions(accountIds.map(accountStreamId), unitOfWork);
      return new Map([...stored].map(([streamId, version]) => [accountIdOfStream(streamId), version]));
    }
    const versions = await Promise.all(accountIds.map((accountId) => this.versions.load(accountId)));
    return new Map(accountIds.map((accountId, i) => [accountId, versions[i]]));
  }
}

/** Applies stored events (in stream order) to an account. */
function foldStored(from: LoadedAccount, events: RecordedEvent[]): LoadedAccount {
  let { state, version } = from;
  for (const stored of events) {
    state = evolve(state, decodeEvent(stored));
    version = stored.version;
  }
  return { state, version };
}

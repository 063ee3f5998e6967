import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Optional } from '@nestjs/common';
import DataLoader from 'dataloader';
import { LRUCache } from 'lru-cache';
import type { PoolClient } from 'pg';
import {
  EventStoreError, EventStoreErrorCode, headAt, type AppendRequest, type EventStore, type NewEvent, type RecordedEvent, type StreamHead, type UnitOfWork,
} from '@tally/event-store';
import {
  balanceOf, decideWithStates, evolve, evolvesPartial, forget, initialState, isAccountError, keptFor, recallFor, recallFrom, refundedUsages,
  type AccountCommand, type AccountEvent, type AccountState,
} from '@tally/ledger-domain';
import { CLOCK, carrierOf, type Clock } from '@tally/shared';
import { LedgerConfig } from '../config/ledger.config';
import { EVENT_STORE } from '../database/tokens.provider';
import { accountCacheForgetPasses, accountCacheForgets, accountCacheHits, accountCacheMisses, accountRecalls, accountSnapshotWrites, timedAppend } from './account.metrics';
import { ACCOUNT_SNAPSHOTS, type AccountSnapshot, type AccountSnapshots } from './account-snapshot.repository';
import { DECODE_METADATA_KEYS, accountIdOfStream, accountStreamId, decodeEvent, eventId, snapshotOf, toNewEvent, type EventAudit } from '@tally/ledger-events';

export interface LoadedAccount {
  state: AccountState;
  /** The stream version this state folds (0 = never seen). */
  version: number;
  /**
   * The id of the event at `version` (absent at 0), and when it was recorded (ms; absent where the store did not say):
   * what tells this state's stream from one written again to the same version after the database went back in time (a
   * failover that lost commits, a restore). The id alone does not when a retried command wrote it again.
   */
  eventId?: string;
  eventAt?: number;
  /** The version of the account's last snapshot, when its memory was last bounded (absent = none). */
  snapshotAt?: number;
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
const NO_HEAD: StreamHead = Object.freeze({ version: 0 });
/** Events read per page by loadAsOf (GET /balance?at=). */
const AS_OF_PAGE = 1_000;
/**
 * A stream longer than this, folded whole, is read a page of this many events at a time and forgets between pages
 * (foldForgetting): read in one query and held whole, a stream of a million events took gigabytes, past the process's
 * heap, and the consumer that needed it crashed on every redelivery.
 */
const WHOLE_FOLD_PAGE = 10_000;
/**
 * Snapshot writes in flight at most (on the pool the consumers' transactions take their connections from); the others
 * wait their turn in the repository (SNAPSHOTS_WAITING at most). Many accounts come due together (after a restart,
 * every cold account with a long stream; on evenly used accounts): one write each, all at once, queued ahead of the
 * next transaction's connection.
 */
const SNAPSHOT_WRITES_AT_ONCE = 2;
/** Snapshots waiting for a write at most; beyond, the oldest waiting is dropped (a cache: that load folds more events). */
const SNAPSHOTS_WAITING = 10_000;
/**
 * A forgotten key is looked up by the id of the first event of a decision made under it; when found, the usage or
 * hold event is among the next ones (after AccountOpened and the expiries swept before it); further than these, the
 * stream is folded whole.
 */
const RECALL_REST = [1, 2, 3];

/**
 * Loads and saves accounts (event streams) for the ledger. Decided state is kept in a bounded LRU cache; every
 * use first compares the cached version and the id of the event there with the store's head (one query for a whole
 * batch), so the cache stays right across partition rebalances, other instances, HTTP commands, rolled-back
 * transactions and a database gone back in time.
 *
 * HTTP requests check their versions through a DataLoader: every request the process read in one turn of the
 * event loop shares one query (dispatched on setImmediate, never cached), so a burst costs one round trip
 * instead of one per request, and each answer is still as fresh as the moment it was asked.
 */
/**
 * The append lost a race: another writer appended to one of its streams first (WRONG_EXPECTED_VERSION), or stored a
 * decision of another length under the same key (IDEMPOTENCY_CONFLICT). Nothing of ours was written.
 */
function isLostRace(error: unknown): boolean {
  return error instanceof EventStoreError && (error.code === 'WRONG_EXPECTED_VERSION' || error.code === 'IDEMPOTENCY_CONFLICT');
}

/**
 * A command that depends on the instant it is decided at (a hold's expiry is its TTL from the decision): built
 * again at each attempt's instant, so a decision that comes late (a lost race, a slow database) is not refused
 * for an instant taken before it.
 */
export interface CommandAt {
  accountId: string;
  at: (now: Date) => AccountCommand;
}

/** What an account weighs against ACCOUNT_CACHE_REMEMBERED: itself, its idempotency keys and the debits it holds. */
export const rememberedBy = (account: LoadedAccount): number => 1 + account.state.seen.size + account.state.debits.size;

/** A pass forgets down to this share of the budget, so passes are rare (one per fifth of the budget remembered again). */
const FORGET_DOWN_TO = 0.8;

/**
 * The decided states the ledger keeps in memory, least recently used out first: at most `maxAccounts` accounts
 * (ACCOUNT_CACHE_SIZE), which together remember at most `maxRemembered` idempotency keys and debits
 * (ACCOUNT_CACHE_REMEMBERED). A busy account remembers each usage since its last snapshot (~270 bytes; ~850 before the
 * compact debit, when counting accounts alone let 10,000 busy ones hold ~1.6 GB). Beyond the budget the least recently
 * used accounts forget their usage and hold keys and unrefunded debits in place (`forget`, as a snapshot does) rather
 * than leave: a forgotten account recalls a key from the event store when a command needs it (one indexed query per
 * batch, what every account past its first snapshot already does), where an evicted one would be folded again from
 * its snapshot (measured: 5,000 busy accounts thrashed at ~600 usages/s). `canForget` is false where the store cannot
 * look a key up (EventStoreDB, snapshots off): there only the account count bounds the memory.
 */
export class AccountCache {
  private readonly lru: LRUCache<string, LoadedAccount>;
  private remembered = 0;
  /**
   * A pass runs when the cache remembers more than this: the budget, or, when the last pass could not get under it,
   * what that pass left plus a fifth of the budget. What accounts cannot forget (their cycles' and grants' keys,
   * refunded debits) grows with their age; once it alone passed the budget, every set ran a pass over the whole cache
   * that freed almost nothing.
   */
  private passAbove: number;

  constructor(
    maxAccounts: number,
    private readonly maxRemembered: number,
    private readonly canForget: boolean,
  ) {
    // Called for a value evicted, deleted or replaced by another: what it remembered leaves with it.
    this.lru = new LRUCache({ max: maxAccounts, dispose: (account) => (this.remembered -= rememberedBy(account)) });
    this.passAbove = maxRemembered;
  }

  get(accountId: string): LoadedAccount | undefined {
    return this.lru.get(accountId);
  }

  set(accountId: string, account: LoadedAccount): void {
    const replaced = this.lru.peek(accountId);
    this.lru.set(accountId, account);
    if (replaced === account) return; // the same state again (a hit): only its recency moved
    this.remembered += rememberedBy(account);
    if (this.canForget && this.remembered > this.passAbove) this.forgetLeastRecentlyUsed();
  }

  delete(accountId: string): void {
    this.lru.delete(accountId);
  }

  /** The keys and debits the cached accounts remember together, accounts included (what the budget counts). */
  rememberedTotal(): number {
    return this.remembered;
  }

  /**
   * Forgets, least recently used first, until the cache remembers FORGET_DOWN_TO of its budget. A forgotten state
   * replaces the cached one (a new object: a batch deciding on the old one keeps it whole) and becomes the most
   * recently used, as any `set` makes it; it weighs little either way.
   */
  private forgetLeastRecentlyUsed(): void {
    accountCacheForgetPasses.inc();
    const target = Math.floor(this.maxRemembered * FORGET_DOWN_TO);
    let forgotten = 0;
    for (const accountId of [...this.lru.rkeys()]) {
      if (this.remembered <= target) break;
      const account = this.lru.peek(accountId) as LoadedAccount;
      const lighter: LoadedAccount = { ...account, state: forget(account.state) };
      if (rememberedBy(lighter) >= rememberedBy(account)) continue;
      this.lru.set(accountId, lighter);
      this.remembered += rememberedBy(lighter);
      forgotten += 1;
    }
    if (forgotten > 0) accountCacheForgets.inc(forgotten);
    this.passAbove = Math.max(this.maxRemembered, this.remembered + (this.maxRemembered - target));
  }
}

@Injectable()
export class AccountRepository {
  private readonly cache: AccountCache;
  private readonly heads: DataLoader<string, StreamHead>;
  /** Snapshots and the bounded memory, where the store can look a forgotten key up (PostgreSQL). */
  private readonly snapshots: (AccountSnapshots & { readEvents: NonNullable<EventStore['readEvents']> }) | undefined;
  private readonly snapshotWrites = new Set<Promise<void>>();
  /** Snapshots due and not yet being written, by account (the latest of each), oldest first. */
  private readonly snapshotsWaiting = new Map<string, AccountSnapshot>();
  /** The consumer's transaction of each unit of work (joinTransaction): what reads in it run on, snapshots' too. */
  private readonly transactions = new WeakMap<UnitOfWork, PoolClient>();

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    config: LedgerConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Optional() @Inject(ACCOUNT_SNAPSHOTS) snapshots?: AccountSnapshots | null,
  ) {
    this.snapshots = snapshots && snapshots.every > 0 && store.readEvents ? { ...snapshots, readEvents: store.readEvents } : undefined;
    this.cache = new AccountCache(config.ACCOUNT_CACHE_SIZE, config.ACCOUNT_CACHE_REMEMBERED, this.snapshots !== undefined);
    this.heads = new DataLoader(
      async (accountIds) => {
        const stored = await this.store.streamHeads(accountIds.map(accountStreamId));
        return accountIds.map((accountId) => stored.get(accountStreamId(accountId)) ?? NO_HEAD);
      },
      { cache: false, batchScheduleFn: (dispatch) => setImmediate(dispatch), maxBatchSize: 1_000 },
    );
  }

  async load(accountId: string): Promise<LoadedAccount> {
    return (await this.loadMany([accountId])).get(accountId) as LoadedAccount;
  }

  async loadMany(accountIds: string[], unitOfWork?: UnitOfWork): Promise<Map<string, LoadedAccount>> {
    const heads = await this.storedHeads(accountIds, unitOfWork);
    const loaded = new Map<string, LoadedAccount>();
    const behind: { accountId: string; from: LoadedAccount }[] = [];
    let hits = 0;
    for (const accountId of new Set(accountIds)) {
      const cached = this.cache.get(accountId) ?? EMPTY;
      const head = heads.get(accountId) ?? NO_HEAD;
      if (isAt(cached, head)) {
        loaded.set(accountId, cached);
        if (cached !== EMPTY) hits += 1;
      }
      // At or below the cached version with another event there: a rolled-back write, or the database went back in
      // time and the stream was written again. Start over from the stream. Past it, readFrom checks the cached event.
      else behind.push({ accountId, from: head.version <= cached.version ? EMPTY : cached });
    }
    // The accounts the cache is behind on (evicted, another instance wrote, a restart): their new events in one read.
    if (behind.length > 0) {
      for (const [accountId, folded] of await this.readBehind(behind, heads, unitOfWork)) loaded.set(accountId, this.snapshotIfDue(accountId, folded));
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
      const loaded = await this.load(commandOrAt.accountId);
      const now = this.clock.now();
      const command = 'at' in commandOrAt ? commandOrAt.at(now) : commandOrAt;
      const account = (await this.recall(new Map([[command.accountId, loaded]]), [command])).get(command.accountId) as LoadedAccount;
      const { events, newEvents, state } = this.decideWithSnapshots(account.state, command, commandKey, now, audit);
      if (events.length === 0) return { accountId: command.accountId, events, state: account.state, version: account.version };
      try {
        const [result] = await timedAppend('command', () =>
          this.store.appendMany([{ streamId: accountStreamId(command.accountId), expectedVersion: account.version, events: newEvents }]),
        );
        // Our event ids (derived from the command's key) were already stored where ours would go: another request
        // under the same key won the race, with content that may differ from ours. Decide again from the stream: the
        // decider then answers it as a repeat (the same content) or IDEMPOTENCY_CONFLICT, never our decision.
        if (result.duplicate) {
          if (attempt >= MAX_CONFLICT_RETRIES) throw new EventStoreError(EventStoreErrorCode.WRONG_EXPECTED_VERSION, `stream ${accountStreamId(command.accountId)}: lost the race under key ${commandKey}`);
          continue;
        }
        const saved = this.snapshotIfDue(command.accountId, {
          state, version: result.nextExpectedVersion, eventId: newEvents.at(-1)?.id, eventAt: result.recordedAt?.getTime(), snapshotAt: account.snapshotAt,
        });
        this.cache.set(command.accountId, saved);
        return { accountId: command.accountId, events, state, version: saved.version };
      } catch (error) {
        const conflict = isLostRace(error);
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
    const unitOfWork = this.store.joinTransaction?.(tx);
    if (unitOfWork) this.transactions.set(unitOfWork, tx);
    return unitOfWork;
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
    const accounts = await this.recall(await this.loadMany(accountIds, unitOfWork), commands.map((c) => c.command), unitOfWork);
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
      accounts.set(command.accountId, { state: decided.state, version: account.version + decided.events.length, snapshotAt: account.snapshotAt });
    }
    // No savepoint: any failure rolls back the consumer's whole transaction, offsets included.
    const results = appends.size > 0 ? await timedAppend('batch', () => this.store.appendMany([...appends.values()], unitOfWork, { savepoint: false })) : [];
    // A duplicate: another transaction stored these very event ids where ours would go (the same message decided
    // concurrently elsewhere) and nothing of ours was written. Its content may differ from what we decided (another
    // instant), so our state is not cached; the cache stays a prefix of the stream and the next load reads the rest.
    const saved = new Map<string, LoadedAccount>();
    for (const result of results) {
      if (result.duplicate) continue;
      const accountId = accountIdOfStream(result.streamId);
      const eventId = appends.get(accountId)?.events.at(-1)?.id;
      saved.set(accountId, { ...(accounts.get(accountId) as LoadedAccount), eventId, eventAt: result.recordedAt?.getTime() });
    }
    return { saved, refused };
  }

  /** After the consumer's transaction committed: its states become the cached truth. */
  remember(saved: Map<string, LoadedAccount>): void {
    for (const [accountId, account] of saved) this.cache.set(accountId, this.snapshotIfDue(accountId, account));
  }

  /** Resolves once every snapshot write started so far has ended (written or failed); for tests and shutdown. */
  async snapshotsWritten(): Promise<void> {
    while (this.snapshotWrites.size > 0) await Promise.all([...this.snapshotWrites]); // each one ended starts a waiting one
  }

  /**
   * After a consumer batch failed (its transaction rolled back): its accounts' cached states are dropped, unless it
   * lost a race with another writer, which leaves them true prefixes of their streams (as in execute): the retry then
   * reads only what the winner appended instead of every account of the batch again, which made it slower and so
   * likelier to lose the next race.
   */
  afterFailedBatch(accountIds: Iterable<string>, error: unknown): void {
    if (isLostRace(error)) return;
    for (const accountId of accountIds) this.cache.delete(accountId);
  }

  /**
   * The account's events up to an instant, folded: the balance as it was then. Read AS_OF_PAGE events at a time and
   * folded as they come, up to the first event recorded after `at`: an early instant of a long stream reads its first
   * page, and no more than a page is held at once. A stream longer than the whole-fold page is folded again by
   * foldForgetting once past it: a fold of it whole held every debit (gigabytes for a million usages).
   */
  async loadAsOf(accountId: string, at: Date): Promise<LoadedAccount> {
    const streamId = accountStreamId(accountId);
    const long = this.snapshots?.wholeFoldPage ?? WHOLE_FOLD_PAGE;
    let account = EMPTY as LoadedAccount;
    for (let fromVersion = 1; ; fromVersion += AS_OF_PAGE) {
      // Past a long stream's first pages, folded again with bounded memory (its debits would be held whole).
      if (fromVersion > long) return (await this.foldForgetting(accountId, [], { page: AS_OF_PAGE, until: at })) as LoadedAccount;
      const events = await this.store.readStream(streamId, { fromVersion, toVersion: fromVersion + AS_OF_PAGE - 1 });
      const end = endAt(events, at);
      account = foldStored(account, end === -1 ? events : events.slice(0, end)) as LoadedAccount; // a whole memory folds anything
      if (end !== -1 || events.length < AS_OF_PAGE) return account;
    }
  }

  /**
   * The accounts the cache is behind on, folded from the store: a cold account with a long stream from its snapshot
   * and the events after it; one whose events after the snapshot refund a debit its snapshot forgot, from its start.
   */
  /**
   * With a unit of work (a consumer's batch), every read runs in its transaction: one that took a second connection of
   * the pool while the batch held one waited, with as many batches under way as connections free, for a connection
   * only another waiting batch could give back (until PG_CONNECT_TIMEOUT_MS failed them all, at every retry).
   */
  private async readBehind(behind: { accountId: string; from: LoadedAccount }[], heads: Map<string, StreamHead>, unitOfWork?: UnitOfWork): Promise<Map<string, LoadedAccount>> {
    const starts = new Map(behind.map(({ accountId, from }) => [accountId, from]));
    if (this.snapshots) {
      const { every } = this.snapshots;
      const versionOf = (accountId: string) => (heads.get(accountId) ?? NO_HEAD).version;
      const cold = behind.filter(({ accountId, from }) => from.version === 0 && versionOf(accountId) >= every);
      const tx = unitOfWork && this.transactions.get(unitOfWork);
      const stored = await this.snapshots.store.read(cold.map(({ accountId }) => accountStreamId(accountId)), tx);
      for (const { accountId } of cold) {
        const snapshot = stored.get(accountStreamId(accountId));
        if (snapshot && snapshot.version <= versionOf(accountId)) starts.set(accountId, { ...snapshot, snapshotAt: snapshot.version });
      }
    }
    const loaded = await this.readFrom(starts, unitOfWork);
    const whole = [...starts.keys()].filter((accountId) => !loaded.has(accountId));
    if (whole.length > 0) for (const [accountId, account] of await this.foldWhole(whole, [], unitOfWork)) loaded.set(accountId, account);
    return loaded;
  }

  /**
   * These accounts folded from their first event, for `commands` to be decided on. A stream longer than the whole-fold
   * page (only where the memory is bounded: snapshots on) is folded by foldForgetting; the others in one query.
   */
  private async foldWhole(accountIds: string[], commands: AccountCommand[], unitOfWork?: UnitOfWork): Promise<Map<string, LoadedAccount>> {
    const page = this.snapshots?.wholeFoldPage ?? WHOLE_FOLD_PAGE;
    const heads = this.snapshots ? await this.store.streamHeads(accountIds.map(accountStreamId), unitOfWork) : new Map<string, StreamHead>();
    const isLong = (accountId: string) => (heads.get(accountStreamId(accountId))?.version ?? 0) > page;
    const short = accountIds.filter((accountId) => !isLong(accountId));
    const folded = short.length > 0 ? await this.readFrom(new Map(short.map((accountId) => [accountId, EMPTY])), unitOfWork) : new Map<string, LoadedAccount>();
    for (const accountId of accountIds.filter(isLong)) {
      const account = await this.foldForgetting(accountId, commands.filter((command) => command.accountId === accountId), { page, unitOfWork });
      if (account) folded.set(accountId, account);
    }
    return folded;
  }

  /**
   * A long stream folded whole with bounded memory, `page` events at a time, forgetting between pages and at the end
   * what deciding `commands` and folding the stream's refunds do not need (ledger-domain's `keptFor`: the debits the
   * stream refunds or a command names, the commands' keys): a first pass finds the refunded usages, a second folds up to
   * the version the first reached (a refund appended between the two is left to the append's version check). The
   * state is a partial memory, as one from a snapshot is, and decides the commands as the whole state would.
   */
  private async foldForgetting(
    accountId: string,
    commands: AccountCommand[],
    { page, until, unitOfWork }: { page: number; until?: Date; unitOfWork?: UnitOfWork },
  ): Promise<LoadedAccount | undefined> {
    const streamId = accountStreamId(accountId);
    const refunded = new Set<string>();
    let last = 0;
    for (let fromVersion = 1; ; fromVersion += page) {
      const read = await this.store.readStream(streamId, { fromVersion, toVersion: fromVersion + page - 1, unitOfWork });
      const end = until === undefined ? -1 : endAt(read, until);
      const events = end === -1 ? read : read.slice(0, end);
      for (const usageId of refundedUsages(events.filter((stored) => stored.type === 'UsageRefunded').map(decodeEvent))) refunded.add(usageId);
      last = events.at(-1)?.version ?? last;
      if (end !== -1 || read.length < page) break;
    }
    const kept = keptFor(commands, refunded);
    let account: LoadedAccount | undefined = EMPTY;
    for (let fromVersion = 1; fromVersion <= last; fromVersion += page) {
      const events = await this.store.readStream(streamId, { fromVersion, toVersion: Math.min(fromVersion + page - 1, last), unitOfWork });
      account = foldStored(account, events);
      if (!account) return undefined;
      account = { ...account, state: forget(account.state, kept) };
    }
    return account;
  }

  /**
   * Each account's events after its start, folded; an account whose start cannot fold them is left out. The read
   * begins at the start's own version: the event there must be the start's (its id), or the start is not a state of
   * this stream (the database went back in time under it) and is left out too. A start from a snapshot written before
   * snapshots knew their event learns it here. The fold reads only what decodeEvent needs of each event's metadata,
   * not the balance it also holds.
   */
  private async readFrom(starts: Map<string, LoadedAccount>, unitOfWork?: UnitOfWork): Promise<Map<string, LoadedAccount>> {
    const read = await this.store.readStreams(
      [...starts].map(([accountId, from]) => ({ streamId: accountStreamId(accountId), fromVersion: Math.max(from.version, 1) })),
      { metadataKeys: DECODE_METADATA_KEYS, unitOfWork },
    );
    const loaded = new Map<string, LoadedAccount>();
    for (const [accountId, from] of starts) {
      let events = read.get(accountStreamId(accountId)) ?? [];
      let start = from;
      if (from.version > 0) {
        const [at, ...after] = events;
        if (at === undefined || !isAt(from, headAt(at))) continue;
        start = { ...from, eventId: at.id, eventAt: at.recordedAt.getTime() };
        events = after;
      }
      const folded = foldStored(start, events);
      if (folded) loaded.set(accountId, folded);
    }
    return loaded;
  }

  /**
   * What the commands need of accounts whose memory is bounded (ledger-domain, account-memory.model.ts), recalled
   * before any is decided: each forgotten key looked up by event id (one query for the batch, in its transaction),
   * and the accounts that need it folded whole. Accounts with a whole memory cost nothing here.
   */
  private async recall(accounts: Map<string, LoadedAccount>, commands: AccountCommand[], unitOfWork?: UnitOfWork): Promise<Map<string, LoadedAccount>> {
    if (!this.snapshots) return accounts;
    const lookups = new Map<string, { accountId: string; key: string }>();
    const whole = new Set<string>();
    for (const command of commands) {
      const recall = recallFor((accounts.get(command.accountId) as LoadedAccount).state, command);
      if (recall.kind === 'full') whole.add(command.accountId);
      else if (recall.kind === 'lookup') lookups.set(`${command.accountId}\u0000${recall.key}`, { accountId: command.accountId, key: recall.key });
    }
    if (lookups.size > 0) {
      // The first event of each key's decision: almost always absent (a new key). Only for the keys found, the rest of
      // their decision, where the usage or hold event is.
      const found = await this.readDecisions(lookups, [0], unitOfWork);
      const rest = await this.readDecisions(new Map([...lookups].filter(([lookup]) => found.has(lookup))), RECALL_REST, unitOfWork);
      let recalledKeys = 0;
      for (const [lookup, { accountId, key }] of lookups) {
        const first = found.get(lookup);
        if (!first) continue;
        const account = accounts.get(accountId) as LoadedAccount;
        // Stored after this state was read (another instance, or a retry racing its first attempt): no repeat of this
        // state, which lacks it (taken for one, a hold's repeat answered "no such hold"). Left unknown, the command is
        // decided as new, and its append finds the key's events stored, which decides it again from the stream.
        if (first.some((event) => event.version > account.version)) continue;
        const decision = [...first, ...(rest.get(lookup) ?? [])].sort((a, b) => a.version - b.version).map(decodeEvent);
        const recalled = recallFrom(account.state, key, decision);
        if (recalled) {
          accounts.set(accountId, { ...account, state: recalled });
          recalledKeys += 1;
        } else whole.add(accountId);
      }
      accountRecalls.inc({ outcome: 'new' }, lookups.size - found.size);
      if (recalledKeys > 0) accountRecalls.inc({ outcome: 'recalled' }, recalledKeys);
    }
    if (whole.size > 0) {
      accountRecalls.inc({ outcome: 'full' }, whole.size);
      const folded = await this.foldWhole([...whole], commands, unitOfWork);
      for (const [accountId, account] of folded) {
        const recalled = { ...account, snapshotAt: accounts.get(accountId)?.snapshotAt };
        accounts.set(accountId, recalled);
        // A fold of committed events, so a state of the stream, which keeps what these commands need: a retry after
        // losing the race for the account (a busy one, a long fold) folds only what was appended since, not all again.
        this.cache.set(accountId, recalled);
      }
    }
    return accounts;
  }

  /** The events at these indexes of the decisions made under each looked-up key, by lookup; one query. */
  private async readDecisions(
    lookups: Map<string, { accountId: string; key: string }>,
    indexes: readonly number[],
    unitOfWork?: UnitOfWork,
  ): Promise<Map<string, RecordedEvent[]>> {
    const found = new Map<string, RecordedEvent[]>();
    if (lookups.size === 0 || !this.snapshots) return found;
    const owners = new Map<string, string>();
    for (const [lookup, { accountId, key }] of lookups) for (const index of indexes) owners.set(eventId(accountId, key, index), lookup);
    for (const stored of await this.snapshots.readEvents([...owners.keys()], unitOfWork)) {
      const lookup = owners.get(stored.id) as string;
      found.set(lookup, [...(found.get(lookup) ?? []), stored]);
    }
    return found;
  }

  /**
   * A state of committed events, as the cache keeps it: once its stream has grown ACCOUNT_SNAPSHOT_EVERY events past
   * its last snapshot, snapshotted (written in the background) and its memory bounded.
   */
  private snapshotIfDue(accountId: string, account: LoadedAccount): LoadedAccount {
    if (!this.snapshots || account.version - (account.snapshotAt ?? 0) < this.snapshots.every) return account;
    const snapshot: AccountSnapshot = { state: forget(account.state), version: account.version, eventId: account.eventId, eventAt: account.eventAt };
    this.snapshotsWaiting.delete(accountId); // a later one of the same account replaces it, and waits from now
    this.snapshotsWaiting.set(accountId, snapshot);
    if (this.snapshotsWaiting.size > SNAPSHOTS_WAITING) {
      const [oldest] = this.snapshotsWaiting.keys();
      this.snapshotsWaiting.delete(oldest);
      accountSnapshotWrites.inc({ result: 'dropped' });
    }
    this.writeWaitingSnapshots();
    return { ...snapshot, snapshotAt: snapshot.version };
  }

  /** Starts writes of waiting snapshots, oldest first, while fewer than SNAPSHOT_WRITES_AT_ONCE are in flight. */
  private writeWaitingSnapshots(): void {
    if (!this.snapshots) return;
    const { store, logger } = this.snapshots;
    for (const [accountId, snapshot] of this.snapshotsWaiting) {
      if (this.snapshotWrites.size >= SNAPSHOT_WRITES_AT_ONCE) return;
      this.snapshotsWaiting.delete(accountId);
      const write: Promise<void> = store
        .write(accountStreamId(accountId), snapshot)
        .then(() => accountSnapshotWrites.inc({ result: 'written' }))
        .catch((error: unknown) => {
          accountSnapshotWrites.inc({ result: 'failed' });
          logger.warn({ err: error, accountId, version: snapshot.version }, 'account snapshot not written; the next load folds more events');
        })
        .finally(() => {
          this.snapshotWrites.delete(write);
          this.writeWaitingSnapshots();
        });
      this.snapshotWrites.add(write);
    }
  }

  private decideWithSnapshots(state: AccountState, command: AccountCommand, commandKey: string, now: Date, audit?: EventAudit) {
    const { events, states } = decideWithStates(command, state, { now });
    const newEvents = events.map((event, index) => toNewEvent(command.accountId, commandKey, index, event, snapshotOf(balanceOf(states[index])), audit));
    return { events, newEvents, state: states.at(-1) ?? state };
  }

  /**
   * Current stream heads, from the store. In the consumer's unit of work the query runs in it; otherwise it joins the
   * event loop turn's shared query.
   */
  private async storedHeads(accountIds: string[], unitOfWork?: UnitOfWork): Promise<Map<string, StreamHead>> {
    if (unitOfWork) {
      const stored = await this.store.streamHeads(accountIds.map(accountStreamId), unitOfWork);
      return new Map([...stored].map(([streamId, head]) => [accountIdOfStream(streamId), head]));
    }
    const heads = await Promise.all(accountIds.map((accountId) => this.heads.load(accountId)));
    return new Map(accountIds.map((accountId, i) => [accountId, heads[i]]));
  }
}

/**
 * Where a prefix of the stream up to `at` ends in these events: the index of the first recorded after it (-1: none).
 * recorded_at is a transaction's start time, so a later version can carry an earlier time; folding around it would give
 * a state that never was.
 */
function endAt(events: readonly RecordedEvent[], at: Date): number {
  return events.findIndex((stored) => stored.recordedAt.getTime() > at.getTime());
}

/**
 * Applies stored events (in stream order) to an account; undefined when its bounded memory cannot fold one of them
 * (a refund of a debit it forgot: the caller folds the stream from its start).
 */
function foldStored(from: LoadedAccount, events: RecordedEvent[]): LoadedAccount | undefined {
  let { state, version, eventId, eventAt } = from;
  for (const stored of events) {
    const event = decodeEvent(stored);
    if (!evolvesPartial(state, event)) return undefined;
    state = evolve(state, event);
    version = stored.version;
    eventId = stored.id;
    eventAt = stored.recordedAt.getTime();
  }
  return {
    state, version, ...(eventId !== undefined && { eventId }), ...(eventAt !== undefined && { eventAt }), ...(from.snapshotAt !== undefined && { snapshotAt: from.snapshotAt }),
  };
}

/**
 * Whether a state folds its stream up to this head: the same version, the same event there, recorded at the same
 * instant. A state or head that does not know an event's id or instant (a snapshot taken before they were kept, an
 * EventStoreDB append) is not held to it.
 */
function isAt(account: LoadedAccount, head: StreamHead): boolean {
  if (head.version !== account.version) return false;
  if (account.eventId !== undefined && head.eventId !== account.eventId) return false;
  return account.eventAt === undefined || head.recordedAt === undefined || head.recordedAt.getTime() === account.eventAt;
}

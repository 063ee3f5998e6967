import { Pool } from 'pg';
import { PostgresEventStore, type StreamRead } from '@tally/event-store';
import { balanceOf, type AccountCommand } from '@tally/ledger-domain';
import { usageCommand } from '@tally/ledger-domain/testing';
import { decodeAccountState } from '@tally/ledger-events';
import { systemClock } from '@tally/shared';
import { createTestSchema, testDatabaseUrl } from '@tally/testing';
import { AccountRepository } from '../src/accounts/account.repository';
import { AccountSnapshotRepository } from '../src/accounts/account-snapshot.repository';
import type { LedgerConfig } from '../src/config/ledger.config';
import { migrateLedger } from '../src/database/data-source.provider';

const EVERY = 10;
const ACCOUNT = 'snap-1';
const usage = (usageId: string, amount: bigint): AccountCommand => usageCommand(usageId, amount, { accountId: ACCOUNT });
const hold = (holdId: string, amount: bigint): AccountCommand => ({ type: 'PlaceHold', accountId: ACCOUNT, holdId, amount, expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
const refund = (usageId: string, key: string): AccountCommand => ({ type: 'RefundUsage', accountId: ACCOUNT, refundId: `refund:${key}`, usageId, reason: 'test', restoreExpired: false });

/**
 * Snapshots of long account streams and the bounded memory they keep (ledger-domain, account-memory.model.ts), on the
 * real PostgreSQL: a cold load reads the snapshot and the events after it; what the snapshot forgot (old usage and
 * hold keys, debits never refunded) is recalled from the event store, so redeliveries stay no-ops and refunds of old
 * usage stay exact; every balance is the one a fold of the whole stream gives.
 */
describe('account snapshots and the bounded memory', () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let pool: Pool;
  let store: PostgresEventStore;
  let snapshots: AccountSnapshotRepository;
  const reads: StreamRead[][] = [];
  const config = { ACCOUNT_CACHE_SIZE: 1_000, ACCOUNT_CACHE_REMEMBERED: 250_000 } as LedgerConfig;

  const withSnapshots = () => new AccountRepository(store, config, systemClock, { store: snapshots, every: EVERY, logger: console });
  const withoutSnapshots = () => new AccountRepository(store, config, systemClock);
  const version = async () => (await pool.query<{ version: number }>(`select version from "${schema.schema}".streams where stream_id = $1`, [`account-${ACCOUNT}`])).rows[0].version;
  const snapshotRow = async () =>
    (await pool.query<{ version: number; state: string }>(`select version, state from "${schema.schema}".account_snapshots where stream_id = $1`, [`account-${ACCOUNT}`])).rows[0];

  beforeAll(async () => {
    schema = await createTestSchema('snapshots');
    await migrateLedger({ DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema.schema } as LedgerConfig);
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 4 });
    store = new PostgresEventStore({ pool, schema: schema.schema, listen: false });
    snapshots = new AccountSnapshotRepository(pool, schema.schema);
    const readStreams = store.readStreams.bind(store);
    store.readStreams = (requests) => {
      reads.push([...requests]);
      return readStreams(requests);
    };

    const writer = withSnapshots();
    await writer.execute({ type: 'GrantCredits', accountId: ACCOUNT, grantId: 'g-1', kind: 'purchased', amount: 1_000_000_000n, source: 'test' }, 'g-1');
    await writer.execute(hold('h-1', 5_000n), 'hold:h-1');
    for (let i = 0; i < 25; i++) await writer.execute(usage(`u-${i}`, 1_000n + BigInt(i)), `usage:u-${i}`);
    await writer.snapshotsWritten();
  });

  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await schema?.drop();
  });

  it('snapshots the stream every ACCOUNT_SNAPSHOT_EVERY events, without the usage and hold keys or the unrefunded debits', async () => {
    const row = await snapshotRow();
    expect(row.version).toBe(20); // AccountOpened, the grant, the hold and 25 usages: 28 events, snapshots at 10 and 20
    const state = decodeAccountState(row.state);
    expect(state.partialMemory).toBe(true);
    expect([...state.seen.keys()]).toEqual(['grant:g-1']);
    expect(state.debits.size).toBe(0);
  });

  it('loads a cold account from its snapshot and the events after it, to the balance the whole stream gives', async () => {
    reads.length = 0;
    const cold = await withSnapshots().load(ACCOUNT);
    // From the snapshot's own version: the event there must be the one the snapshot folded (database-went-back spec).
    expect(reads.map((read) => read.map(({ fromVersion }) => fromVersion))).toEqual([[20]]);
    const whole = await withoutSnapshots().load(ACCOUNT);
    expect(cold.version).toBe(whole.version);
    expect(balanceOf(cold.state)).toEqual(balanceOf(whole.state));
  });

  it('keeps a redelivered usage or hold the snapshot forgot a no-op, and refuses it with other content, in the consumer’s transaction', async () => {
    const before = await version();
    const repository = withSnapshots();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const unitOfWork = repository.joinTransaction(client);
      const { saved, refused } = await repository.executeBatch(
        [
          { command: usage('u-0', 1_000n), commandKey: 'usage:u-0' },
          { command: usage('u-1', 9_999n), commandKey: 'usage:u-1' },
          { command: usage('u-new', 7n), commandKey: 'usage:u-new' },
        ],
        unitOfWork,
      );
      await client.query('COMMIT');
      repository.remember(saved);
      expect(refused.map(({ index, code }) => [index, code])).toEqual([[1, 'IDEMPOTENCY_CONFLICT']]);
    } finally {
      client.release();
    }
    expect(await version()).toBe(before + 1); // only u-new
    const repeatHold = await repository.execute(hold('h-1', 5_000n), 'hold:h-1');
    expect(repeatHold.events).toEqual([]);
    expect(await version()).toBe(before + 1);
  });

  it('refunds a usage the snapshot forgot exactly, and a cold load over that refund is still right', async () => {
    const first = withSnapshots();
    const refunded = await first.execute(refund('u-3', 'r-1'), 'refund:r-1');
    expect(refunded.events).toHaveLength(1);
    expect(refunded.events[0]).toMatchObject({ type: 'UsageRefunded', data: { usageId: 'u-3', amount: 1_003n } });
    const second = withSnapshots();
    const again = await second.execute(refund('u-3', 'r-2'), 'refund:r-2').catch((error: { code?: string }) => error.code);
    expect(again).toBe('REFUND_EXCEEDS_DEBIT');
    await Promise.all([first.snapshotsWritten(), second.snapshotsWritten()]);

    const cold = await withSnapshots().load(ACCOUNT);
    const fromStart = await withoutSnapshots().load(ACCOUNT);
    expect(cold.version).toBe(fromStart.version);
    expect(balanceOf(cold.state)).toEqual(balanceOf(fromStart.state));
  });

  // A refund of usage older than the last snapshot needs the account folded from its first event. Read in one query
  // and held whole, a stream of a million events took gigabytes, past the process's heap: the consumer (or the API
  // pod) deciding it crashed, and crashed again on every redelivery or retry.
  it('folds a long stream whole a page at a time, forgetting between pages, to refund and recall exactly', async () => {
    const accountId = 'snap-long';
    const PAGE = 20;
    const writer = withoutSnapshots();
    await writer.execute({ type: 'GrantCredits', accountId, grantId: 'g-1', kind: 'purchased', amount: 1_000_000_000n, source: 'test' }, 'g-1');
    for (let i = 0; i < 70; i++) await writer.execute(usageCommand(`l-${i}`, 1_000n + BigInt(i), { accountId }), `usage:l-${i}`);
    await writer.execute({ type: 'RefundUsage', accountId, refundId: 'refund:early', usageId: 'l-5', reason: 'test', restoreExpired: false }, 'refund:early');
    for (let i = 70; i < 90; i++) await writer.execute(usageCommand(`l-${i}`, 1_000n + BigInt(i), { accountId }), `usage:l-${i}`);
    // A repository whose whole folds page by PAGE events, over a snapshot that forgot l-5 (refunded) and l-7 (not).
    const paged = () => new AccountRepository(store, config, systemClock, { store: snapshots, every: EVERY, logger: console, wholeFoldPage: PAGE });
    const first = paged();
    await first.load(accountId);
    await first.snapshotsWritten();
    const readStream = store.readStream.bind(store);
    const ranges: [number, number | undefined][] = [];
    store.readStream = (streamId, opts) => {
      if (streamId === `account-${accountId}`) ranges.push([opts?.fromVersion ?? 1, opts?.toVersion]);
      return readStream(streamId, opts);
    };
    reads.length = 0;
    try {
      const refunder = paged();
      const refunded = await refunder.execute({ type: 'RefundUsage', accountId, refundId: 'refund:late', usageId: 'l-7', reason: 'test', restoreExpired: false }, 'refund:late');
      expect(refunded.events).toMatchObject([{ type: 'UsageRefunded', data: { usageId: 'l-7', amount: 1_007n } }]);
      // Never the whole stream in one read: pages of PAGE events (two passes), the snapshot's start aside.
      expect(reads.flat().filter((read) => read.streamId === `account-${accountId}` && read.fromVersion === 1)).toEqual([]);
      expect(ranges.length).toBeGreaterThanOrEqual(2 * 5);
      for (const [from, to] of ranges) expect((to ?? Number.POSITIVE_INFINITY) - from + 1).toBeLessThanOrEqual(PAGE);
      // The state decides as the whole one would: the earlier refund stays refunded, repeats are no-ops, the balance is exact.
      const again = await refunder.execute({ type: 'RefundUsage', accountId, refundId: 'refund:more', usageId: 'l-5', reason: 'test', restoreExpired: false }, 'refund:more').catch((error: { code?: string }) => error.code);
      expect(again).toBe('REFUND_EXCEEDS_DEBIT');
      expect((await refunder.execute(usageCommand('l-7', 1_007n, { accountId }), 'usage:l-7')).events).toEqual([]);
      expect((await refunder.execute(usageCommand('l-3', 1_003n, { accountId }), 'usage:l-3')).events).toEqual([]);
      const whole = await withoutSnapshots().load(accountId);
      const mine = await refunder.load(accountId);
      expect(mine.version).toBe(whole.version);
      expect(balanceOf(mine.state)).toEqual(balanceOf(whole.state));
      expect(mine.state.debits.size).toBeLessThan(10); // forgot as it went: not the 90 debits
      await refunder.snapshotsWritten();
    } finally {
      store.readStream = readStream;
    }
  });

  // On a busy account, usage appended between the fold's two passes made the refund's append lose the race; the retry
  // started again from the old cached state and folded the whole stream once more, each attempt losing again.
  it('after losing the race for a busy account during a long fold, retries from the folded state: the stream is folded whole once', async () => {
    const accountId = 'snap-race';
    const PAGE = 20;
    const writer = withoutSnapshots();
    await writer.execute({ type: 'GrantCredits', accountId, grantId: 'g-1', kind: 'purchased', amount: 1_000_000_000n, source: 'test' }, 'g-1');
    for (let i = 0; i < 60; i++) await writer.execute(usageCommand(`r-${i}`, 1_000n, { accountId }), `usage:r-${i}`);
    const paged = () => new AccountRepository(store, config, systemClock, { store: snapshots, every: EVERY, logger: console, wholeFoldPage: PAGE });
    const refunder = paged();
    await refunder.load(accountId); // cached, forgetting r-2 at its snapshots
    await refunder.snapshotsWritten();
    const readStream = store.readStream.bind(store);
    let fromStart = 0;
    store.readStream = async (streamId, opts) => {
      if (streamId === `account-${accountId}` && (opts?.fromVersion ?? 1) === 1) {
        fromStart += 1;
        // The second pass begins: another instance appends usage to the account meanwhile.
        if (fromStart === 2) await writer.execute(usageCommand('r-race', 1_000n, { accountId }), 'usage:r-race');
      }
      return readStream(streamId, opts);
    };
    try {
      const refunded = await refunder.execute({ type: 'RefundUsage', accountId, refundId: 'refund:race', usageId: 'r-2', reason: 'test', restoreExpired: false }, 'refund:race');
      expect(refunded.events).toMatchObject([{ type: 'UsageRefunded', data: { usageId: 'r-2', amount: 1_000n } }]);
      expect(fromStart).toBe(2); // one whole fold (its two passes); the retry read only what was appended
    } finally {
      store.readStream = readStream;
    }
    const whole = await withoutSnapshots().load(accountId);
    expect(balanceOf((await refunder.load(accountId)).state)).toEqual(balanceOf(whole.state));
    await refunder.snapshotsWritten();
  });

  it('folds the whole stream to recall a key whose usage event sits past the first four of its decision (expiries swept before it)', async () => {
    const account = 'snap-2';
    let now = new Date('2030-01-01T00:00:00.000Z');
    const clock = { now: () => now };
    const repository = () => new AccountRepository(store, config, clock, { store: snapshots, every: EVERY, logger: console });
    const spend = (usageId: string, amount: bigint): AccountCommand => usageCommand(usageId, amount, { accountId: account, occurredAt: now.toISOString() });
    const writer = repository();
    await writer.execute({ type: 'GrantCredits', accountId: account, grantId: 'main', kind: 'purchased', amount: 1_000_000_000n, source: 'test' }, 'main');
    for (const promo of ['p1', 'p2', 'p3', 'p4']) {
      await writer.execute({ type: 'GrantCredits', accountId: account, grantId: promo, kind: 'promotional', amount: 1_000n, source: 'test', expiresAt: '2030-01-01T01:00:00.000Z' }, promo);
    }
    now = new Date('2030-01-01T02:00:00.000Z');
    const late = await writer.execute(spend('u-late', 500n), 'usage:u-late');
    expect(late.events.map((e) => e.type)).toEqual(['CreditsExpired', 'CreditsExpired', 'CreditsExpired', 'CreditsExpired', 'UsageDebited']);
    for (let i = 0; i < 10; i++) await writer.execute(spend(`u-more-${i}`, 1n), `usage:u-more-${i}`);
    await writer.snapshotsWritten();
    const streamId = `account-${account}`;
    expect((await snapshots.read([streamId])).get(streamId)?.state.seen.has('usage:u-late')).toBe(false);

    reads.length = 0;
    const again = await repository().execute(spend('u-late', 500n), 'usage:u-late');
    expect(again.events).toEqual([]);
    expect(reads.at(-1)?.map(({ streamId: id, fromVersion }) => [id, fromVersion])).toEqual([[streamId, 1]]); // the whole stream
    const other = await repository().execute(spend('u-late', 501n), 'usage:u-late').catch((error: { code?: string }) => error.code);
    expect(other).toBe('IDEMPOTENCY_CONFLICT');
  });

  // Two ledger instances (or a retry racing its first attempt): this one's cached state is older than the hold the
  // other just placed under the same key. The key's recall finds that hold's event, newer than the state it recalls
  // into: taken for a repeat of a state without the hold, the answer was "no hold" (HOLD_CLOSED 409 at the HTTP
  // edge), and the client placed another one, reserving the credits twice.
  it('answers a hold another instance placed since this one read the account as that hold, not as none', async () => {
    // This instance's store: right after it reads the account's stream, the other instance places the hold.
    const myStore = new PostgresEventStore({ pool, schema: schema.schema, listen: false });
    const mine = new AccountRepository(myStore, config, systemClock, { store: snapshots, every: EVERY, logger: console });
    let placed: Awaited<ReturnType<AccountRepository['execute']>> | undefined;
    const readStreams = myStore.readStreams.bind(myStore);
    myStore.readStreams = async (requests) => {
      const read = await readStreams(requests);
      placed ??= await withSnapshots().execute(hold('h-race', 7_000n), 'hold:h-race');
      return read;
    };

    const again = await mine.execute(hold('h-race', 7_000n), 'hold:h-race');
    expect(placed?.events.map((event) => event.type)).toEqual(['HoldPlaced']);
    expect(again.events).toEqual([]);
    expect(again.state.holds.get('h-race')).toMatchObject({ holdId: 'h-race', amount: 7_000n });
    expect(again.version).toBe(await version());
  });

  // Versions 1 and 2 lack the debt line (state version 3): their snapshots are ignored like any other version's.
  it('writes a few snapshots at a time, never a queue of them on the pool the consumers take their connections from', async () => {
    // 40 accounts come due together, as after a restart (every cold account with a long stream) or on evenly used
    // accounts. A write per account, all at once, queued 36 behind the pool's 4 connections, and the next consumer
    // transaction waited behind them for a connection (failing after PG_CONNECT_TIMEOUT_MS on a slow database).
    const accounts = Array.from({ length: 40 }, (_, i) => `snap-many-${i}`);
    const writer = withoutSnapshots();
    for (const accountId of accounts) {
      await writer.execute({ type: 'GrantCredits', accountId, grantId: 'g', kind: 'purchased', amount: 1_000_000n, source: 'test' }, 'g');
      for (let i = 0; i < EVERY - 2; i++) await writer.execute(usageCommand(`m-${i}`, 1n, { accountId }), `usage:m-${i}`);
    }
    const written = async () =>
      Number((await pool.query<{ n: string }>(`select count(*) as n from "${schema.schema}".account_snapshots where stream_id like 'account-snap-many-%'`)).rows[0].n);

    const first = withSnapshots();
    await first.loadMany(accounts); // every one at version EVERY: due
    expect(pool.waitingCount).toBeLessThanOrEqual(2); // the writes themselves, dispatched on the next turn
    // The others wait their turn in the repository, and are written as those before them end.
    await first.snapshotsWritten();
    expect(await written()).toBe(accounts.length);
    for (const accountId of accounts) {
      const cold = await withSnapshots().load(accountId);
      expect(balanceOf(cold.state)).toEqual(balanceOf((await withoutSnapshots().load(accountId)).state));
    }
  });

  it('ignores a snapshot written at another state version (1 and 2 among them) and folds the stream from its start', async () => {
    for (const stateVersion of [0, 1, 2]) {
      await pool.query(`update "${schema.schema}".account_snapshots set state_version = $2 where stream_id = $1`, [`account-${ACCOUNT}`, stateVersion]);
      reads.length = 0;
      const cold = await withSnapshots().load(ACCOUNT);
      expect(reads.map((read) => read.map(({ fromVersion }) => fromVersion))).toEqual([[1]]);
      expect(balanceOf(cold.state)).toEqual(balanceOf((await withoutSnapshots().load(ACCOUNT)).state));
    }
  });
});

import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'pg';
import { PostgresEventStore } from '@tally/event-store';
import { balanceOf, type AccountCommand } from '@tally/ledger-domain';
import { usageCommand } from '@tally/ledger-domain/testing';
import { systemClock } from '@tally/shared';
import { createTestSchema, testDatabaseUrl } from '@tally/testing';
import { AccountRepository } from '../src/accounts/account.repository';
import { AccountSnapshotRepository } from '../src/accounts/account-snapshot.repository';
import type { LedgerConfig } from '../src/config/ledger.config';
import { migrateLedger } from '../src/database/data-source.provider';

const EVERY = 10;
const usage = (accountId: string, usageId: string, amount: bigint): AccountCommand => usageCommand(usageId, amount, { accountId });
const grant = (accountId: string): AccountCommand => ({ type: 'GrantCredits', accountId, grantId: 'g-1', kind: 'purchased', amount: 1_000_000_000n, source: 'test' });

/**
 * The database went back in time under a running ledger: a failover to a replica that had not received the last
 * commits, or a restore to an earlier point. The lost tail of a stream is then written again by other commands, to
 * the same version or past it. A ledger that knew the stream by its version alone took its cached state (or a
 * snapshot written from the lost tail) for the stream's: it decided on events that no longer exist. Each state now
 * knows the id of the event at its version, and a state whose event is not the stream's is folded again.
 */
describe('the account cache and snapshots after the database went back', () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let pool: Pool;
  let store: PostgresEventStore;
  let snapshots: AccountSnapshotRepository;
  const config = { ACCOUNT_CACHE_SIZE: 1_000, ACCOUNT_CACHE_REMEMBERED: 250_000 } as LedgerConfig;
  const withSnapshots = () => new AccountRepository(store, config, systemClock, { store: snapshots, every: EVERY, logger: console });
  const withoutSnapshots = () => new AccountRepository(store, config, systemClock);

  /** What a restore to the moment the stream was at `version` leaves of it (its snapshot, if any, is left alone). */
  const goBack = async (accountId: string, version: number) => {
    const s = `"${schema.schema}"`;
    await pool.query(`delete from ${s}.events where stream_id = $1 and version > $2`, [`account-${accountId}`, version]);
    await pool.query(`update ${s}.streams set version = $2 where stream_id = $1`, [`account-${accountId}`, version]);
  };
  /** The stream folded whole by a ledger that never saw it. */
  const truth = async (accountId: string) => withoutSnapshots().load(accountId);

  beforeAll(async () => {
    schema = await createTestSchema('went_back');
    await migrateLedger({ DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema.schema } as LedgerConfig);
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 4 });
    store = new PostgresEventStore({ pool, schema: schema.schema, listen: false });
    snapshots = new AccountSnapshotRepository(pool, schema.schema);
  });

  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await schema?.drop();
  });

  it.each([
    { to: 'to the same version', accountId: 'same-1', rewritten: [['u-3', 300n], ['u-4', 400n]] as const, spent: 750n },
    { to: 'past the cached version', accountId: 'past-1', rewritten: [['u-3', 300n], ['u-4', 400n], ['u-6', 600n]] as const, spent: 1_350n },
  ])('decides on the stream, not the cached state, when the lost tail was written again $to', async ({ accountId, rewritten, spent }) => {
    const ledger = withoutSnapshots();
    await ledger.execute(grant(accountId), 'grant:g-1');
    await ledger.execute(usage(accountId, 'u-1', 100n), 'usage:u-1');
    await ledger.execute(usage(accountId, 'u-2', 200n), 'usage:u-2'); // cached at version 4
    await goBack(accountId, 2);
    const other = withoutSnapshots(); // another replica, after the failover
    for (const [usageId, amount] of rewritten) await other.execute(usage(accountId, usageId, amount), `usage:${usageId}`);

    const decision = await ledger.execute(usage(accountId, 'u-5', 50n), 'usage:u-5');

    const stream = await truth(accountId);
    expect(decision.version).toBe(2 + rewritten.length + 1);
    expect(balanceOf(decision.state)).toEqual(balanceOf(stream.state));
    expect(balanceOf(stream.state).available).toBe(1_000_000_000n - spent);
  });

  it('takes a usage whose charge was lost as new, not as a repeat of what the cache remembers', async () => {
    const ledger = withoutSnapshots();
    await ledger.execute(grant('repeat-1'), 'grant:g-1');
    await ledger.execute(usage('repeat-1', 'u-1', 100n), 'usage:u-1'); // lost below
    await goBack('repeat-1', 2);
    await withoutSnapshots().execute(usage('repeat-1', 'u-2', 200n), 'usage:u-2'); // version 3 again

    const redelivered = await ledger.execute(usage('repeat-1', 'u-1', 100n), 'usage:u-1');

    expect(redelivered.events.map((event) => event.type)).toEqual(['UsageDebited']);
    expect(balanceOf((await truth('repeat-1')).state).available).toBe(1_000_000_000n - 300n);
  });

  it('tells the stream from the cached state when the same command was written again last, after another (same event id at the same version)', async () => {
    // The event ids of a decision come from its command's key: a client's retry after the failover writes the very id
    // the lost commit had, at the same version when another command took the lost one's place before it.
    const ledger = withoutSnapshots();
    await ledger.execute(grant('retry-1'), 'grant:g-1');
    await ledger.execute(usage('retry-1', 'u-x', 100n), 'usage:u-x');
    await ledger.execute(usage('retry-1', 'u-k', 200n), 'usage:u-k'); // cached at version 4, the event of usage:u-k there
    await goBack('retry-1', 2);
    await sleep(5); // a failover takes seconds: what is written again is recorded at a later instant
    const other = withoutSnapshots();
    await other.execute(usage('retry-1', 'u-y', 300n), 'usage:u-y');
    await other.execute(usage('retry-1', 'u-k', 200n), 'usage:u-k'); // the retry: version 4, the same event id

    const redelivered = await ledger.execute(usage('retry-1', 'u-x', 100n), 'usage:u-x'); // its charge was lost

    expect(redelivered.events.map((event) => event.type)).toEqual(['UsageDebited']);
    const stream = await truth('retry-1');
    expect(balanceOf(redelivered.state)).toEqual(balanceOf(stream.state));
    expect(balanceOf(stream.state).available).toBe(1_000_000_000n - 600n);
  });

  it('decides a consumer batch, in its transaction, on the stream and not the cached state', async () => {
    const ledger = withoutSnapshots();
    await ledger.execute(grant('batch-1'), 'grant:g-1');
    await ledger.execute(usage('batch-1', 'u-1', 100n), 'usage:u-1'); // cached at version 3
    await goBack('batch-1', 2);
    await withoutSnapshots().execute(usage('batch-1', 'u-2', 200n), 'usage:u-2'); // version 3 again

    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const outcome = await ledger.executeBatch([{ command: usage('batch-1', 'u-1', 100n), commandKey: 'usage:u-1' }], ledger.joinTransaction(client));
      await client.query('COMMIT');
      ledger.remember(outcome.saved);
    } finally {
      client.release();
    }

    const stream = await truth('batch-1');
    expect(stream.version).toBe(4); // u-1's charge, lost with the tail, made again
    expect(balanceOf((await ledger.load('batch-1')).state)).toEqual(balanceOf(stream.state));
    expect(balanceOf(stream.state).available).toBe(1_000_000_000n - 300n);
  });

  it('loads a cold account from its stream, not from a snapshot of the lost tail', async () => {
    const writer = withSnapshots();
    await writer.execute(grant('snap-1'), 'grant:g-1');
    for (let i = 0; i < 10; i++) await writer.execute(usage('snap-1', `u-${i}`, 1_000n), `usage:u-${i}`); // 12 events
    await writer.snapshotsWritten();
    expect((await snapshots.read(['account-snap-1'])).get('account-snap-1')?.version).toBe(10);
    await goBack('snap-1', 8); // the snapshot at 10 survives it (a write in flight across the failover)
    const other = withoutSnapshots();
    for (let i = 0; i < 4; i++) await other.execute(usage('snap-1', `v-${i}`, 7n), `usage:v-${i}`); // version 12, other events

    const reader = withSnapshots();
    const cold = await reader.load('snap-1');

    const stream = await truth('snap-1');
    expect(cold.version).toBe(12);
    expect(balanceOf(cold.state)).toEqual(balanceOf(stream.state));
    expect(balanceOf(stream.state).available).toBe(1_000_000_000n - 6_000n - 28n);
    // Folded whole, the stream is snapshotted anew, at its own last event.
    await reader.snapshotsWritten();
    const [last] = await store.readStream('account-snap-1', { fromVersion: 12 });
    expect((await snapshots.read(['account-snap-1'])).get('account-snap-1')).toMatchObject({ version: 12, eventId: last.id });
  });
});

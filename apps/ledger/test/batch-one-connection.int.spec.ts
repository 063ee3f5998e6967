import { Pool } from 'pg';
import pino from 'pino';
import type { ParsedMessage } from '@tally/contracts';
import { PostgresEventStore } from '@tally/event-store';
import type { KafkaBatch } from '@tally/kafka';
import { inTransaction } from '@tally/ledger-read-models';
import type { AccountCommand } from '@tally/ledger-domain';
import { systemClock } from '@tally/shared';
import { createTestSchema, testDatabaseUrl } from '@tally/testing';
import { AccountRepository } from '../src/accounts/account.repository';
import { AccountSnapshotRepository } from '../src/accounts/account-snapshot.repository';
import { ApplyCommandBatchHandler } from '../src/command-consumer/apply-command-batch.handler';
import { LedgerConfig } from '../src/config/ledger.config';
import { migrateLedger } from '../src/database/data-source.provider';

const grant = (accountId: string, key: string): AccountCommand => ({ type: 'GrantCredits', accountId, grantId: key, kind: 'promotional', amount: 1_000_000n, source: `promo:${key}` });

/**
 * A consumer's batch runs in a transaction that holds one of the process's pooled connections. Reading the accounts its
 * cache does not hold (a restart, an eviction, another instance wrote) took a second connection from the same pool
 * while the first was held: with as many batches under way as the pool has connections free (PG_POOL_MAX low, or
 * CONSUMER_PARTITIONS_CONCURRENTLY high, and the relay's and the listeners' connections taken), every batch waited for
 * a connection only another waiting batch could give back, until PG_CONNECT_TIMEOUT_MS failed them all, and again at
 * every retry. Shown with the smallest case: a pool of one connection, which the batch's transaction holds. Real
 * PostgreSQL.
 */
describe('a consumer batch that reads accounts its cache does not hold', () => {
  const EVERY = 10;
  const config = Object.assign(new LedgerConfig(), { ACCOUNT_CACHE_SIZE: 10_000, ACCOUNT_CACHE_REMEMBERED: 250_000, WORKERS: 'commands' });
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let pool: Pool;

  beforeAll(async () => {
    schema = await createTestSchema('batch_one_connection');
    await migrateLedger(Object.assign(new LedgerConfig(), { DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema.schema }));
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 4 });
  });

  afterAll(async () => {
    await pool?.end();
    await schema?.drop();
  });

  /** A process with `max` connections in all and a cache that holds no account (a fresh one), snapshots on. */
  const consumerProcess = (max: number) => {
    const own = new Pool({ connectionString: testDatabaseUrl(), max, connectionTimeoutMillis: 3_000 });
    const store = new PostgresEventStore({ pool: own, schema: schema.schema, listen: false });
    const accounts = new AccountRepository(store, config, systemClock, { store: new AccountSnapshotRepository(own, schema.schema), every: EVERY, logger: console });
    return { pool: own, store, accounts };
  };

  /** The batch (a grant per message) in a transaction of its own, as the transport runs it. */
  const applyBatch = async (process: ReturnType<typeof consumerProcess>, accountIds: string[], key: string) => {
    const handler = new ApplyCommandBatchHandler(process.accounts, config, pino({ level: 'silent' }), systemClock);
    const messages = accountIds.map((accountId, offset) => ({ offset: String(offset), timestamp: '0', headers: {}, value: { envelope: { id: `${key}-${accountId}`, accountId } } }));
    const toCommand = (message: ParsedMessage) => ({ command: grant(message.envelope.accountId, message.envelope.id), commandKey: message.envelope.id });
    await inTransaction(process.pool, async (tx) => {
      const batch = { topic: 'usage', partition: 0, messages, tx, deadLetter: () => undefined, afterCommit: () => undefined };
      await handler.apply(batch as unknown as KafkaBatch<ParsedMessage>, toCommand);
    });
  };

  const grants = async (accountId: string) =>
    (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema.schema}".events WHERE stream_id = $1 AND type = 'CreditsGranted'`, [`account-${accountId}`])).rows[0].n;

  it('reads them in its own transaction, from their events or their snapshot, needing no second connection', async () => {
    const writerProcess = consumerProcess(2);
    // Short streams, and one long enough to have a snapshot (25 events, one every 10).
    for (const accountId of ['cold-1', 'cold-2']) await writerProcess.accounts.execute(grant(accountId, 'opening'), 'opening');
    for (let i = 0; i < 25; i++) await writerProcess.accounts.execute(grant('cold-long', `g-${i}`), `g-${i}`);
    await writerProcess.accounts.snapshotsWritten();
    await writerProcess.store.close();
    await writerProcess.pool.end();
    expect((await pool.query(`SELECT 1 FROM "${schema.schema}".account_snapshots WHERE stream_id = 'account-cold-long'`)).rowCount).toBe(1);

    const one = consumerProcess(1);
    try {
      await applyBatch(one, ['cold-1', 'cold-2', 'cold-long'], 'batch');
    } finally {
      await one.store.close();
      await one.pool.end();
    }
    expect([await grants('cold-1'), await grants('cold-2'), await grants('cold-long')]).toEqual([2, 2, 26]);
  }, 30_000);
});

import { Pool } from 'pg';
import pino from 'pino';
import { PostgresEventStore } from '@tally/event-store';
import type { AccountCommand } from '@tally/ledger-domain';
import { metricsRegistry } from '@tally/metrics';
import { systemClock } from '@tally/shared';
import { createTestSchema, testDatabaseUrl, waitFor } from '@tally/testing';
import { AccountRepository } from '../src/accounts/account.repository';
import { LedgerConfig } from '../src/config/ledger.config';
import { migrateLedger } from '../src/database/data-source.provider';
import { ExpirySchedule } from '../src/expiry/expiry.schedule';
import { ExpiryWorker } from '../src/expiry/expiry.worker';

/**
 * Every hold gets a row in the expiry schedule, also the ones settled or released long before they are due, so the
 * worker must keep up with the rate holds are placed at: a pass that found a full batch goes on at once (it used to
 * wait the poll interval, 200 items per 500 ms), and replicas share the due rows instead of each deciding all of them.
 */
describe('the expiry worker (PostgreSQL)', () => {
  const ACCOUNTS = 150;
  const HOLDS = 3; // per account: the first left open (released by the worker), the others released by the client
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let pool: Pool;
  let store: PostgresEventStore;
  let config: LedgerConfig;
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    schema = await createTestSchema('expiry_worker');
    config = Object.assign(new LedgerConfig(), { DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema.schema, ACCOUNT_CACHE_SIZE: 1_000, ACCOUNT_CACHE_REMEMBERED: 250_000 });
    await migrateLedger(config);
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 8 });
    store = new PostgresEventStore({ pool, schema: schema.schema, listen: false });
  });

  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await schema?.drop();
  });

  /** Accounts with a grant and HOLDS holds each, all due by now; returns the open holds' ids. */
  async function dueHolds(prefix: string): Promise<{ open: { accountId: string; holdId: string }[]; rows: number }> {
    const accounts = new AccountRepository(store, config, systemClock);
    const schedule = new ExpirySchedule(pool, schema.schema);
    const expiresAt = new Date(Date.now() + 1_500).toISOString();
    const open: { accountId: string; holdId: string }[] = [];
    for (let a = 0; a < ACCOUNTS; a++) {
      const accountId = `${prefix}-${a}`;
      const run = (command: AccountCommand, key: string) => accounts.execute(command, key);
      await run({ type: 'GrantCredits', accountId, grantId: 'g', kind: 'purchased', amount: 100_000_000n, source: 'pack:test' }, 'g');
      for (let h = 0; h < HOLDS; h++) {
        const holdId = `h${h}`;
        await schedule.add(accountId, 'hold', holdId, expiresAt);
        await run({ type: 'PlaceHold', accountId, holdId, amount: 1_000_000n, expiresAt }, `hold:${holdId}`);
        if (h === 0) open.push({ accountId, holdId });
        else await run({ type: 'ReleaseHold', accountId, holdId, reason: 'released' }, `release:${holdId}`);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(expiresAt) - Date.now() + 50)));
    return { open, rows: ACCOUNTS * HOLDS };
  }

  const rowsLeft = async (prefix: string) =>
    Number((await pool.query<{ n: string }>(`select count(*) as n from "${schema.schema}".expiries where account_id like $1`, [`${prefix}-%`])).rows[0].n);
  const expiredReleases = async (prefix: string) =>
    (
      await pool.query<{ stream_id: string; hold_id: string }>(
        `select stream_id, data->>'holdId' as hold_id from "${schema.schema}".events where type = 'HoldReleased' and data->>'reason' = 'expired' and stream_id like $1 order by stream_id`,
        [`account-${prefix}-%`],
      )
    ).rows.map((row) => `${row.stream_id}/${row.hold_id}`);

  /** A worker over the test's schema whose every account command is counted. */
  function worker(executed: string[]): ExpiryWorker {
    const accounts = new AccountRepository(store, config, systemClock);
    const execute = accounts.execute.bind(accounts);
    accounts.execute = (command, key, actor) => {
      if (!('at' in command)) executed.push(`${command.accountId}/${key}`);
      return execute(command, key, actor);
    };
    // A poll interval far longer than the test: only the passes that follow a full batch at once can finish in time.
    return new ExpiryWorker({ schedule: new ExpirySchedule(pool, schema.schema), accounts, clock: systemClock, logger, pollMs: 600_000 });
  }

  it('goes on at once after a full batch: 450 due rows resolved in one call, not one batch per poll interval', async () => {
    const { open, rows } = await dueHolds('one');
    expect(await rowsLeft('one')).toBe(rows);
    const executed: string[] = [];
    const resolved = await worker(executed).expireDue(); // one call: the passes after full batches included
    expect(resolved).toBe(open.length);
    expect(await rowsLeft('one')).toBe(0);
    expect(await expiredReleases('one')).toEqual(open.map(({ accountId, holdId }) => `account-${accountId}/${holdId}`).sort());
    expect(executed).toHaveLength(rows);
  }, 90_000);

  it('shares the due rows between two replicas: each row decided once, each open hold released once', async () => {
    const { open, rows } = await dueHolds('two');
    const executed: string[] = [];
    const [a, b] = [worker(executed), worker(executed)];
    const backlog = new ExpirySchedule(pool, schema.schema).backlog(new Date(), 100_000);
    expect(await backlog).toMatchObject({ rows });
    expect((await backlog).oldestSeconds).toBeGreaterThan(0);
    await Promise.all([a.start(), b.start()]);
    try {
      await waitFor(async () => (await rowsLeft('two')) === 0, 30_000, 100);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    expect(await expiredReleases('two')).toEqual(open.map(({ accountId, holdId }) => `account-${accountId}/${holdId}`).sort());
    expect(executed.length).toBe(rows);
    expect(new Set(executed).size).toBe(rows);
    expect(await new ExpirySchedule(pool, schema.schema).backlog(new Date(), 100_000)).toEqual({ rows: 0, oldestSeconds: 0 });
  }, 90_000);

  it('waits the poll interval after a pass in which an item failed, rather than claiming the failing rows again at once', async () => {
    const schedule = new ExpirySchedule(pool, schema.schema);
    const due = new Date(Date.now() - 1_000).toISOString();
    for (let i = 0; i < 250; i++) await schedule.add(`failing-${i}`, 'hold', 'h', due);
    const accounts = new AccountRepository(store, config, systemClock);
    let calls = 0;
    accounts.execute = async () => {
      calls += 1;
      throw new Error('the account cannot be read');
    };
    const failing = new ExpiryWorker({ schedule, accounts, clock: systemClock, logger, pollMs: 600_000 });
    expect(await failing.expireDue()).toBe(0); // returns: a full batch of failures does not make it go on
    expect(calls).toBe(200);
    expect(() => failing.checkFlowing()).not.toThrow(); // one failure each: not stalled yet
    expect(await rowsLeft('failing')).toBe(250); // every row kept, the failed ones due again at their own time
    expect((await schedule.backlog(new Date(), 1_000)).rows).toBeGreaterThanOrEqual(250);
    await schedule.remove(Array.from({ length: 250 }, (_, i) => ({ accountId: `failing-${i}`, kind: 'hold' as const, itemId: 'h', dueAt: new Date() })));
  }, 60_000);

  it("reports the schedule's backlog in the metrics registry while a worker runs", async () => {
    const schedule = new ExpirySchedule(pool, schema.schema);
    await schedule.add('metrics-0', 'hold', 'h0', new Date(Date.now() - 120_000).toISOString());
    const running = new ExpiryWorker({ schedule, accounts: new AccountRepository(store, config, systemClock), clock: systemClock, logger, pollMs: 600_000 });
    const gauge = async (name: string) => (await metricsRegistry.getSingleMetric(name)?.get())?.values[0]?.value;
    // Before the worker takes the row (its first pass starts at once): a worker registers its reading on start.
    const claim = schedule.claim.bind(schedule);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    schedule.claim = async (...args) => (await held, claim(...args));
    await running.start();
    try {
      expect(await gauge('tally_expiry_due_rows')).toBe(1);
      expect(await gauge('tally_expiry_oldest_due_seconds')).toBeGreaterThanOrEqual(120);
    } finally {
      release();
      await running.stop();
    }
    await schedule.remove([{ accountId: 'metrics-0', kind: 'hold', itemId: 'h0', dueAt: new Date() }]);
  }, 90_000);
});

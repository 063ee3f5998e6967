import { Pool } from 'pg';
import pino from 'pino';
import { PostgresEventStore } from '@tally/event-store';
import { balanceOf, type AccountCommand } from '@tally/ledger-domain';
import type { RateCard } from '@tally/pricing';
import { metricsRegistry } from '@tally/metrics';
import { systemClock, type Clock } from '@tally/shared';
import { createTestSchema, testDatabaseUrl, waitFor } from '@tally/testing';
import { AccountRepository } from '../src/accounts/account.repository';
import { LedgerConfig } from '../src/config/ledger.config';
import { migrateLedger } from '../src/database/data-source.provider';
import { ExpirySchedule } from '../src/expiry/expiry.schedule';
import { ExpiryWorker } from '../src/expiry/expiry.worker';
import { AuthorizeHandler } from '../src/authorize/authorize.handler';
import { GrantHandler } from '../src/grant/grant.handler';

/**
 * Every hold gets a row in the expiry schedule, also the ones settled or released long before they are due, so the
 * worker must keep up with the rate holds are placed at: a pass that claimed a full batch goes on at once (it used to
 * wait the poll interval, 200 items per 500 ms), replicas share the due rows instead of each deciding all of them, a
 * row that keeps failing waits a backoff instead of being what every pass claims first, an item never placed is given
 * up 30 s after it first came due, and a claim that outlived its lease changes nothing.
 */
describe('the expiry worker (PostgreSQL)', () => {
  const ACCOUNTS = 150;
  const HOLDS = 3; // per account: the first left open (released by the worker), the others released by the client
  const AHEAD_MS = 60_000; // holds expire this far ahead of the real clock; the workers' clock is past that
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let pool: Pool;
  let store: PostgresEventStore;
  let config: LedgerConfig;
  const logger = pino({ level: 'silent' });
  const later: Clock = { now: () => new Date(Date.now() + AHEAD_MS + 1_000) };

  beforeAll(async () => {
    schema = await createTestSchema('expiry_worker');
    config = Object.assign(new LedgerConfig(), { DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema.schema, ACCOUNT_CACHE_SIZE: 1_000, ACCOUNT_CACHE_REMEMBERED: 250_000, HOLD_SETTLE_GRACE_SECONDS: 0 }); // holds released at their TTL's end (the grace: hold-settle-grace.e2e)
    await migrateLedger(config);
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 8 });
    store = new PostgresEventStore({ pool, schema: schema.schema, listen: false });
  });

  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await schema?.drop();
  });

  const schedule = () => new ExpirySchedule(pool, schema.schema);

  /** Accounts with a grant and HOLDS holds each, due for the `later` clock; returns the open holds. */
  async function dueHolds(prefix: string): Promise<{ open: string[]; rows: number }> {
    const accounts = new AccountRepository(store, config, systemClock);
    const expiresAt = new Date(Date.now() + AHEAD_MS).toISOString();
    const open: string[] = [];
    for (let a = 0; a < ACCOUNTS; a++) {
      const accountId = `${prefix}-${a}`;
      const run = (command: AccountCommand, key: string) => accounts.execute(command, key);
      await run({ type: 'GrantCredits', accountId, grantId: 'g', kind: 'purchased', amount: 100_000_000n, source: 'pack:test' }, 'g');
      for (let h = 0; h < HOLDS; h++) {
        const holdId = `h${h}`;
        await schedule().add(accountId, 'hold', holdId, expiresAt);
        await run({ type: 'PlaceHold', accountId, holdId, amount: 1_000_000n, expiresAt }, `hold:${holdId}`);
        if (h === 0) open.push(`account-${accountId}/${holdId}`);
        else await run({ type: 'ReleaseHold', accountId, holdId, reason: 'released' }, `release:${holdId}`);
      }
    }
    return { open: open.sort(), rows: ACCOUNTS * HOLDS };
  }

  const rowsOf = async (prefix: string) =>
    (
      await pool.query<{ account_id: string; due_at: Date; first_due_at: Date | null }>(
        `select account_id, due_at, first_due_at from "${schema.schema}".expiries where account_id like $1 order by account_id`,
        [`${prefix}-%`],
      )
    ).rows;
  const expiredReleases = async (prefix: string) =>
    (
      await pool.query<{ stream_id: string; hold_id: string }>(
        `select stream_id, data->>'holdId' as hold_id from "${schema.schema}".events where type = 'HoldReleased' and data->>'reason' = 'expired' and stream_id like $1`,
        [`account-${prefix}-%`],
      )
    ).rows
      .map((row) => `${row.stream_id}/${row.hold_id}`)
      .sort();

  /** A worker over the test's schema on `clock`, its account commands counted in `executed` (or failing for `failFor`; `onEach` called as each starts). */
  function worker(executed: string[], clock: Clock = later, failFor?: (accountId: string) => boolean, onEach?: () => void): ExpiryWorker {
    const accounts = new AccountRepository(store, config, clock);
    const execute = accounts.execute.bind(accounts);
    accounts.execute = async (command, key, actor) => {
      if (!('at' in command)) executed.push(`${command.accountId}/${key}`);
      if (!('at' in command)) onEach?.();
      if (!('at' in command) && failFor?.(command.accountId)) throw new Error('the account cannot be read');
      return execute(command, key, actor);
    };
    // A poll interval far longer than the test: only the passes that follow a full batch at once can finish in time.
    return new ExpiryWorker({ schedule: schedule(), accounts, clock, logger, pollMs: 600_000 });
  }

  it('goes on at once after a full batch: 450 due rows resolved in one call, not one batch per poll interval', async () => {
    const { open, rows } = await dueHolds('one');
    expect(await rowsOf('one')).toHaveLength(rows);
    const executed: string[] = [];
    expect(await worker(executed).expireDue()).toBe(open.length); // one call: the passes after full batches included
    expect(await rowsOf('one')).toEqual([]);
    expect(await expiredReleases('one')).toEqual(open);
    expect(executed).toHaveLength(rows);
  }, 90_000);

  it('shares the due rows between two replicas: each row decided once, by one or the other, each open hold released once', async () => {
    const { open, rows } = await dueHolds('two');
    const [byA, byB]: string[][] = [[], []];
    const [a, b] = [worker(byA), worker(byB)];
    await Promise.all([a.expireDue(), b.expireDue()]);
    expect(await rowsOf('two')).toEqual([]);
    expect(await expiredReleases('two')).toEqual(open);
    expect(byA.length + byB.length).toBe(rows);
    expect(new Set([...byA, ...byB]).size).toBe(rows);
    expect(Math.min(byA.length, byB.length)).toBeGreaterThan(0);
  }, 90_000);

  it("decides one account's items one after another, several accounts at once", async () => {
    const { open } = await dueHolds('turns');
    const accounts = new AccountRepository(store, config, later);
    const execute = accounts.execute.bind(accounts);
    const inFlight = new Map<string, number>();
    let most = { perAccount: 0, overall: 0 };
    accounts.execute = async (command, key, actor) => {
      if ('at' in command) return execute(command, key, actor);
      inFlight.set(command.accountId, (inFlight.get(command.accountId) ?? 0) + 1);
      const overall = [...inFlight.values()].reduce((sum, n) => sum + n, 0);
      most = { perAccount: Math.max(most.perAccount, inFlight.get(command.accountId) as number), overall: Math.max(most.overall, overall) };
      try {
        return await execute(command, key, actor);
      } finally {
        inFlight.set(command.accountId, (inFlight.get(command.accountId) as number) - 1);
      }
    };
    expect(await new ExpiryWorker({ schedule: schedule(), accounts, clock: later, logger, pollMs: 600_000 }).expireDue()).toBe(open.length);
    expect(await expiredReleases('turns')).toEqual(open);
    expect(most.perAccount).toBe(1); // an account's items never decided at once (their appends would conflict)
    expect(most.overall).toBeGreaterThan(1); // but accounts in parallel
  }, 90_000);

  it('a stop during a pass makes the items it did not decide due again at once, for the next worker, not at the end of its lease', async () => {
    const { open, rows } = await dueHolds('stop');
    const byA: string[] = [];
    const a = worker(byA, later, undefined, () => {
      if (byA.length === 20) void a.stop(); // while the first pass is under way
    });
    await a.expireDue();
    expect(byA.length).toBeLessThan(200); // the pass stopped early
    const left = await rowsOf('stop');
    expect(left).toHaveLength(rows - byA.length);
    for (const row of left) expect(row.due_at.getTime()).toBeLessThanOrEqual(later.now().getTime()); // not its lease (30 s on)
    const byB: string[] = [];
    await worker(byB).expireDue(); // the next worker, at the same time: takes every row the stop left
    expect(byB).toHaveLength(rows - byA.length);
    expect(new Set([...byA, ...byB]).size).toBe(rows);
    expect(await rowsOf('stop')).toEqual([]);
    expect(await expiredReleases('stop')).toEqual(open);
  }, 90_000);

  it('a failing row waits a backoff instead of being claimed first by every pass; the others are resolved meanwhile', async () => {
    const firstDue = new Date(Date.now() - 90_000); // before the never-placed rows: claimed first
    for (let i = 0; i < 250; i++) await schedule().add(`poison-${String(i).padStart(3, '0')}`, 'hold', 'h', firstDue.toISOString());
    for (let i = 0; i < 10; i++) await schedule().add(`never-${i}`, 'hold', 'h', new Date(Date.now() - 60_000).toISOString()); // never placed, past the grace
    const executed: string[] = [];
    const failing = worker(executed, systemClock, (accountId) => accountId.startsWith('poison-'));
    try {
      expect(await failing.expireDue()).toBe(0); // 200 poison rows claimed first, all failed: no pass straight after
      expect(executed).toHaveLength(200);
      expect(await failing.expireDue()).toBe(0); // the rest: 50 poison rows and the 10 never placed, removed
      expect(executed).toHaveLength(260);
      expect(await rowsOf('never')).toEqual([]);
      const poison = await rowsOf('poison');
      expect(poison).toHaveLength(250);
      for (const row of poison) {
        expect(row.due_at.getTime()).toBeGreaterThan(Date.now()); // later, not at once
        expect(row.first_due_at).toEqual(firstDue); // still counted as due since then
      }
      expect((await schedule().backlog(new Date(), 1_000)).oldestSeconds).toBeGreaterThanOrEqual(90);
      expect(() => failing.checkFlowing()).not.toThrow(); // one failure each: not stalled yet
    } finally {
      await pool.query(`delete from "${schema.schema}".expiries where account_id like 'poison-%'`);
    }
  }, 60_000);

  it('gives an item its account never knew up 30 s after it first came due, looking again every 10 s meanwhile', async () => {
    const due = new Date('2030-01-01T00:00:00.000Z');
    let now = new Date(due.getTime() + 1_000);
    const clock: Clock = { now: () => now };
    await schedule().add('unknown-0', 'hold', 'h', due.toISOString());
    const executed: string[] = [];
    const looking = worker(executed, clock);
    for (const [at, dueAgain] of [[1_000, 11_000], [12_000, 22_000], [23_000, 33_000]]) {
      now = new Date(due.getTime() + at);
      await looking.expireDue();
      expect(await rowsOf('unknown')).toEqual([{ account_id: 'unknown-0', due_at: new Date(due.getTime() + dueAgain), first_due_at: due }]);
    }
    now = new Date(due.getTime() + 34_000);
    await looking.expireDue();
    expect(await rowsOf('unknown')).toEqual([]);
    expect(executed).toHaveLength(4);
  });

  // A hold (or expiring grant) whose append waits on its stream's lock past its due time: the worker looks for it,
  // finds nothing committed and, 30 s after the row came due, removes the row as never placed. The append then
  // commits, and nothing would ever expire what it placed: the credits stayed held until the account's next command.
  it.each([
    ['a hold', 'slowhold'],
    ['an expiring grant', 'slowgrant'],
  ])('still expires %s whose append ended after the worker gave its row up as never placed', async (_, prefix) => {
    const accountId = `${prefix}-1`;
    const accounts = new AccountRepository(store, config, systemClock);
    await accounts.execute({ type: 'GrantCredits', accountId, grantId: 'g', kind: 'purchased', amount: 100_000_000n, source: 'pack:test' }, 'g');
    const asked = Date.now();
    let handlerNow = new Date(asked);
    const handlerClock: Clock = { now: () => handlerNow };
    const locker = await pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`select 1 from "${schema.schema}".streams where stream_id = $1 for update`, [`account-${accountId}`]);
      const placing =
        prefix === 'slowhold'
          ? new AuthorizeHandler(accounts, schedule(), config, {} as RateCard, handlerClock).authorize(accountId, { amount: '1', hold: { holdId: 'h', ttlSeconds: 1 } })
          : new GrantHandler(accounts, schedule(), handlerClock).credit({ type: 'GrantCredits', accountId, grantId: 'promo', kind: 'promotional', amount: 5n, source: 'promo:test', expiresAt: new Date(asked + 1_000).toISOString() });
      await waitFor(async () => (await rowsOf(prefix)).length === 1); // scheduled before the append, which now waits
      // The worker, 60 s past the due time, finds no such item committed: given up as never placed.
      await worker([], { now: () => new Date(asked + 61_000) }).expireDue();
      expect(await rowsOf(prefix)).toEqual([]);
      handlerNow = new Date(asked + 61_000); // the append ends that late
      await locker.query('COMMIT');
      await placing;
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
    }
    await worker([], { now: () => new Date(asked + 62_000) }).expireDue();
    const after = await accounts.load(accountId);
    expect(prefix === 'slowhold' ? balanceOf(after.state).held : balanceOf(after.state).byKind.promotional).toBe(0n);
    expect(await rowsOf(prefix)).toEqual([]);
  });

  // The same, when the append committed and then the call failed (a connection lost after COMMIT): the handler threw
  // before it could add the row again, and with no retry nothing ever expired what the append placed.
  it.each([
    ['a hold', 'lostanswerhold'],
    ['an expiring grant', 'lostanswergrant'],
  ])('still expires %s whose append ended late and whose call then failed, with no retry', async (_, prefix) => {
    const accountId = `${prefix}-1`;
    const accounts = new AccountRepository(store, config, systemClock);
    await accounts.execute({ type: 'GrantCredits', accountId, grantId: 'g', kind: 'purchased', amount: 100_000_000n, source: 'pack:test' }, 'g');
    const execute = accounts.execute.bind(accounts);
    accounts.execute = async (command, key, actor) => {
      await execute(command, key, actor);
      throw new Error('Connection terminated unexpectedly'); // after the COMMIT
    };
    const asked = Date.now();
    let handlerNow = new Date(asked);
    const handlerClock: Clock = { now: () => handlerNow };
    const locker = await pool.connect();
    let failed: unknown;
    try {
      await locker.query('BEGIN');
      await locker.query(`select 1 from "${schema.schema}".streams where stream_id = $1 for update`, [`account-${accountId}`]);
      const placing = (
        prefix === 'lostanswerhold'
          ? new AuthorizeHandler(accounts, schedule(), config, {} as RateCard, handlerClock).authorize(accountId, { amount: '1', hold: { holdId: 'h', ttlSeconds: 1 } })
          : new GrantHandler(accounts, schedule(), handlerClock).credit({ type: 'GrantCredits', accountId, grantId: 'promo', kind: 'promotional', amount: 5n, source: 'promo:test', expiresAt: new Date(asked + 1_000).toISOString() })
      ).catch((error: unknown) => (failed = error));
      await waitFor(async () => (await rowsOf(prefix)).length === 1);
      await worker([], { now: () => new Date(asked + 61_000) }).expireDue();
      expect(await rowsOf(prefix)).toEqual([]);
      handlerNow = new Date(asked + 61_000);
      await locker.query('COMMIT');
      await placing;
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
    }
    expect(failed).toBeDefined();
    accounts.execute = execute;
    await worker([], { now: () => new Date(asked + 62_000) }).expireDue();
    const after = await accounts.load(accountId);
    expect(prefix === 'lostanswerhold' ? balanceOf(after.state).held : balanceOf(after.state).byKind.promotional).toBe(0n);
    expect(await rowsOf(prefix)).toEqual([]);
  });

  // The row of a grant first asked for with an earlier expiry (its first attempt refused) comes due before the grant
  // does. If the grant's expiry passes while its ExpireCredits is decided, the decision (not yet due) expired nothing;
  // judged on a second reading of the clock (due by then) the row was taken for done and removed: the credits stayed.
  it('judges a grant not yet due on the instant its decision used, not a later reading of the clock', async () => {
    const expiresAt = new Date(Date.now() + 3_600_000);
    let now = new Date(expiresAt.getTime() - 10_000);
    const clock: Clock = { now: () => now };
    const accounts = new AccountRepository(store, config, clock);
    await accounts.execute({ type: 'GrantCredits', accountId: 'instant-0', grantId: 'promo', kind: 'promotional', amount: 5_000_000n, expiresAt: expiresAt.toISOString(), source: 'promo:test' }, 'promo');
    await schedule().add('instant-0', 'credits', 'promo', new Date(expiresAt.getTime() - 60_000).toISOString());
    const execute = accounts.execute.bind(accounts);
    accounts.execute = async (command, key, actor) => {
      const decision = await execute(command, key, actor);
      now = new Date(expiresAt.getTime() + 1); // the grant's expiry passes as its decision commits
      return decision;
    };
    const expiring = new ExpiryWorker({ schedule: schedule(), accounts, clock, logger, pollMs: 600_000 });
    expect(await expiring.expireDue()).toBe(0);
    expect(await rowsOf('instant')).toEqual([{ account_id: 'instant-0', due_at: expiresAt, first_due_at: null }]);
    expect(await expiring.expireDue()).toBe(1);
    expect(await rowsOf('instant')).toEqual([]);
  });

  it('a claim that outlived its lease changes nothing: the row another claim took over stays', async () => {
    const due = new Date('2030-02-01T00:00:00.000Z');
    await schedule().add('leased-0', 'hold', 'h', due.toISOString());
    const [first] = await schedule().claim(new Date(due.getTime() + 1_000), 10, 30_000);
    expect(first).toMatchObject({ accountId: 'leased-0', dueAt: due });
    expect(await schedule().claim(new Date(due.getTime() + 2_000), 10, 30_000)).toEqual([]); // held by the first claim
    const [second] = await schedule().claim(new Date(due.getTime() + 32_000), 10, 30_000); // its lease is over
    expect(second).toMatchObject({ accountId: 'leased-0', dueAt: due });
    await schedule().remove([first]);
    await schedule().reschedule(first, new Date(due.getTime() + 3_600_000).toISOString());
    await schedule().retryAt([first], due);
    expect(await rowsOf('leased')).toEqual([{ account_id: 'leased-0', due_at: second.lease, first_due_at: due }]);
    await schedule().remove([second]);
    expect(await rowsOf('leased')).toEqual([]);
  });

  // A command adds its item's row before it is decided, so a refused one (a hold refused 402) leaves a row the worker
  // will give up on. If the command is sent again while a claim holds that row, the row must outlive that claim.
  it('a row added again while a claim holds it (a refused hold placed on a retry) outlives that claim, due at the earlier time', async () => {
    const due = new Date('2030-03-01T00:00:00.000Z');
    await schedule().add('again-0', 'hold', 'h', due.toISOString());
    const [claimed] = await schedule().claim(new Date(due.getTime() + 31_000), 10, 30_000); // given up on: never placed, it seems
    const placedUntil = new Date(due.getTime() + 300_000).toISOString();
    await schedule().add('again-0', 'hold', 'h', placedUntil); // the retry places the hold meanwhile
    await schedule().remove([claimed]);
    const row = (await rowsOf('again')).find((hold) => hold.account_id === 'again-0');
    expect(row).toMatchObject({ account_id: 'again-0', first_due_at: null });
    expect(row?.due_at.getTime()).toBeLessThanOrEqual(Date.parse(placedUntil));

    // And a grant first asked for with a late expiry, then (the first refused) with an earlier one, is due at the earlier.
    await schedule().add('again-1', 'credits', 'g', '2030-03-02T00:00:00.000Z');
    await schedule().add('again-1', 'credits', 'g', '2030-03-01T12:00:00.000Z');
    expect((await rowsOf('again')).find((grant) => grant.account_id === 'again-1')).toEqual({ account_id: 'again-1', due_at: new Date('2030-03-01T12:00:00.000Z'), first_due_at: null });
  });

  it("reports the schedule's backlog in the metrics registry while a worker runs", async () => {
    const due = new Date(Date.now() - 120_000);
    await schedule().add('metrics-0', 'hold', 'h0', due.toISOString());
    const paused = schedule();
    // Before the worker takes the row (its first pass starts at once): a worker registers its reading on start.
    const claim = paused.claim.bind(paused);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    paused.claim = async (...args) => (await held, claim(...args));
    const running = new ExpiryWorker({ schedule: paused, accounts: new AccountRepository(store, config, systemClock), clock: systemClock, logger, pollMs: 600_000 });
    const gauge = async (name: string) => (await metricsRegistry.getSingleMetric(name)?.get())?.values[0]?.value;
    await running.start();
    try {
      expect(await gauge('tally_expiry_due_rows')).toBe(1);
      expect(await gauge('tally_expiry_oldest_due_seconds')).toBeGreaterThanOrEqual(120);
    } finally {
      release();
      await running.stop();
      await pool.query(`delete from "${schema.schema}".expiries where account_id = 'metrics-0'`);
    }
  });

  it('a pass that makes no progress (its claim waits on a lock) makes the worker not ready, and ready again once it goes on', async () => {
    const locker = await pool.connect();
    const stuck = new ExpiryWorker({
      schedule: schedule(), accounts: new AccountRepository(store, config, systemClock), clock: systemClock, logger, pollMs: 600_000,
      readiness: { stall: { afterAttempts: 5, afterMs: 60_000 }, runningAfterMs: 300 },
    });
    /** The readiness failure's message, or undefined while ready. */
    const notReady = (): string | undefined => {
      try {
        stuck.checkFlowing();
        return undefined;
      } catch (error) {
        return (error as Error).message;
      }
    };
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${schema.schema}".expiries IN ACCESS EXCLUSIVE MODE`);
      await stuck.start();
      expect(await waitFor(notReady)).toMatch(/^expiry: a run has made no progress for \d+ s/);
      await locker.query('ROLLBACK');
      await waitFor(() => notReady() === undefined);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
      await stuck.stop();
    }
  });
});


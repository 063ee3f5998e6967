import { parseCredits } from '@tally/money';
import { createTestSchema, startServiceProcess, testDatabaseUrl, waitFor, type ServiceProcess } from '@tally/testing';
import type { Producer } from 'kafkajs';
import { Pool } from 'pg';
import { authorized, cliEnv, ledgerSettings, present, runCli, usageMessage, usageProducer } from './cli.harness';

const ACCOUNTS = 12;
const READERS = 3;
const PRELOAD_PER_ACCOUNT = 500;
/** The machine is shared (2 cores): the CLI's runs get room when other suites run at the same time. */
const CLI_TIMEOUT_MS = 300_000;
const GRANT = '1000';

interface Read {
  at: number;
  accountId: string;
  status: number;
  version?: number;
  available?: string;
  usedThisCycle?: string;
  overdraft?: string;
}

/**
 * The "Done when" of the operator CLI: `tally read-models rebuild` runs against a ledger process under load (usage
 * events flowing from Kafka) while balances are read over HTTP without pause, and not one read is a 404 or a value
 * the account never had; then `tally read-models verify` reports identical tables.
 */
describe('tally read-models rebuild under load (real ledger process, Kafka, PostgreSQL)', () => {
  let schema: string;
  let drop: () => Promise<void>;
  let pool: Pool;
  let ledger: ServiceProcess | undefined;
  let producer: Producer | undefined;
  const settings = { env: {} as Record<string, string>, topics: [] as string[] };
  const accounts = Array.from({ length: ACCOUNTS }, (_, i) => `rebuild-${i}`);

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('cli_rebuild'));
    const ledgerSetup = ledgerSettings(schema);
    Object.assign(settings, ledgerSetup);
    await ledgerSetup.createTopics();
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 4 });
    ledger = await startServiceProcess('ledger', { ...settings.env, CONSUMER_MAX_BATCH: '200' });
    producer = await usageProducer();
  }, 120_000);

  afterAll(async () => {
    await producer?.disconnect();
    await ledger?.kill();
    await pool.end();
    await drop();
    await pool.end().catch(() => undefined);
  });

  const count = async (sql: string): Promise<number> => Number((await pool.query<{ n: string }>(sql)).rows[0].n);

  it('keeps every balance readable and right while it rebuilds, and verify finds the tables identical', async () => {
    const base = present(ledger, 'the ledger').base;
    const s = `"${schema}"`;
    for (const accountId of accounts) {
      const response = await fetch(`${base}/v1/accounts/${accountId}/grants`, {
        method: 'POST',
        headers: { ...authorized, 'content-type': 'application/json' },
        body: JSON.stringify({ idempotencyKey: `welcome-${accountId}`, amount: GRANT, reason: 'test grant' }),
      });
      expect(response.status).toBeLessThan(300);
    }

    // History to rebuild from: PRELOAD_PER_ACCOUNT usage events per account, applied and projected.
    let sent = 0;
    const perAccount = new Map(accounts.map((accountId) => [accountId, 0]));
    const send = async (n: number) => {
      const messages = Array.from({ length: n }, () => {
        const accountId = accounts[sent % ACCOUNTS];
        perAccount.set(accountId, (perAccount.get(accountId) ?? 0) + 1);
        return usageMessage(`u-${sent++}`, accountId);
      });
      await present(producer, 'the producer').send({ topic: settings.env.USAGE_EVENTS_TOPIC, acks: -1, messages });
    };
    for (let i = 0; i < PRELOAD_PER_ACCOUNT * ACCOUNTS; i += 1000) await send(1000);
    const debits = `SELECT count(*) AS n FROM ${s}.events WHERE type = 'UsageDebited'`;
    const caughtUp = `SELECT count(*) AS n FROM ${s}.streams st JOIN ${s}.balances b ON b.account_id = substr(st.stream_id, 9) WHERE b.stream_version = st.version`;
    await waitFor(async () => (await count(debits)) === sent && (await count(caughtUp)) === ACCOUNTS, 120_000, 200);
    const oidBefore = await count(`SELECT '${s}.balances'::regclass::oid AS n`);

    // Load: ~1,000 usage events a second until told to stop.
    let loading = true;
    const load = (async () => {
      while (loading) {
        await send(40);
        await new Promise((done) => setTimeout(done, 40));
      }
    })();

    // Readers: each owns some accounts and reads them one after the other, without pause.
    const reads: Read[] = [];
    let reading = true;
    const readers = Array.from({ length: READERS }, (_, r) =>
      (async () => {
        const mine = accounts.filter((_, i) => i % READERS === r);
        for (let i = 0; reading; i++) {
          const accountId = mine[i % mine.length];
          const response = await fetch(`${base}/v1/accounts/${accountId}/balance`, { headers: authorized });
          const body = (await response.json()) as { asOfVersion?: number; available?: string; usedThisCycle?: string; overdraft?: string };
          reads.push({ at: Date.now(), accountId, status: response.status, version: body.asOfVersion, available: body.available, usedThisCycle: body.usedThisCycle, overdraft: body.overdraft });
        }
      })(),
    );

    const rebuildStarted = Date.now();
    const rebuild = await runCli(['read-models', 'rebuild', '--no-progress', '--batch-size', '500'], cliEnv(settings.env), CLI_TIMEOUT_MS);
    const rebuildEnded = Date.now();
    expect(rebuild).toMatchObject({ code: 0, stderr: '' });
    expect(rebuild.stdout).toMatch(/^rebuilt .* read models from \d+ events/);
    await new Promise((done) => setTimeout(done, 1_000)); // reads and load go on a little after the swap
    loading = false;
    await load;
    reading = false;
    await Promise.all(readers);

    // The tables were swapped (new relations), the shadow and retired schemas are gone.
    expect(await count(`SELECT '${s}.balances'::regclass::oid AS n`)).not.toBe(oidBefore);
    expect(await count(`SELECT count(*) AS n FROM pg_namespace WHERE nspname IN ('${schema}_rebuild', '${schema}_retired')`)).toBe(0);

    // Every read during the rebuild answered 200 with a value the account had at the version it names.
    const during = reads.filter((read) => read.at >= rebuildStarted && read.at <= rebuildEnded);
    expect(during.length).toBeGreaterThan(100);
    expect(reads.filter((read) => read.status !== 200)).toEqual([]);
    const decided = await pool.query<{ account_id: string; version: number; available: string; used: string; overdraft: string }>(
      `SELECT substr(e.stream_id, 9) AS account_id, e.version, e.metadata->'balanceAfter'->>'available' AS available,
              e.metadata->'balanceAfter'->>'usedThisCycle' AS used, e.metadata->'balanceAfter'->>'overdraft' AS overdraft
         FROM ${s}.events e JOIN unnest($1::text[], $2::int[]) AS r(stream_id, version) USING (stream_id, version)`,
      [reads.map((read) => `account-${read.accountId}`), reads.map((read) => read.version)],
    );
    const truth = new Map(decided.rows.map((row) => [`${row.account_id}@${row.version}`, row]));
    const wrong = reads.filter((read) => {
      const row = truth.get(`${read.accountId}@${read.version}`);
      return !row || row.available !== read.available || row.used !== read.usedThisCycle || row.overdraft !== read.overdraft;
    });
    expect(wrong).toEqual([]);
    // Per account, reads never go back: versions and used-this-cycle only grow, available only shrinks.
    const last = new Map<string, Read>();
    const backwards = reads.filter((read) => {
      const previous = last.get(read.accountId);
      last.set(read.accountId, read);
      return (
        previous !== undefined &&
        (present(previous.version, 'a version') > present(read.version, 'a version') ||
          parseCredits(present(previous.usedThisCycle, 'usedThisCycle')) > parseCredits(present(read.usedThisCycle, 'usedThisCycle')) ||
          parseCredits(present(previous.available, 'available')) < parseCredits(present(read.available, 'available')))
      );
    });
    expect(backwards).toEqual([]);

    // Once the load is applied and projected, each balance is exact: the grant less one price per usage event.
    await waitFor(async () => (await count(debits)) === sent && (await count(caughtUp)) === ACCOUNTS, 120_000, 200);
    const price = parseCredits((await pool.query<{ amount: string }>(`SELECT data->>'amount' AS amount FROM ${s}.events WHERE type = 'UsageDebited' LIMIT 1`)).rows[0].amount);
    for (const accountId of accounts) {
      const body = (await (await fetch(`${base}/v1/accounts/${accountId}/balance`, { headers: authorized })).json()) as { available: string; usedThisCycle: string };
      expect(parseCredits(body.available)).toBe(parseCredits(GRANT) - BigInt(present(perAccount.get(accountId), `${accountId}'s count`)) * price);
    }

    const verify = await runCli(['read-models', 'verify', '--settle-seconds', '10'], cliEnv(settings.env), CLI_TIMEOUT_MS);
    expect(verify.stdout).toContain('identical: the live read models are the fold of');
    expect(verify.code).toBe(0);
    process.stdout.write(
      `rebuild under load: ${rebuild.stdout.trim()}; ${reads.length} reads (${during.length} during the rebuild, ${Math.round((rebuildEnded - rebuildStarted) / 100) / 10} s), ` +
        `${sent} usage events\n`,
    );
  }, 900_000);
});

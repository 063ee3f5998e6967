import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { Pool } from 'pg';
import {
  endPool, Acknowledgements, OutageAnswers, loadWhile, postgresOutage, startPrivatePostgres, startServiceProcess, testKafkaBrokers, waitFor,
  type OutageTimeline, type PrivatePostgres, type ServiceProcess,
} from '@tally/testing';
import { API_KEY, createTopics, ledgerTestSettings } from './ledger.harness';

/**
 * PostgreSQL restarts under load, on a PostgreSQL of the test's own: the ledger (split as recommended into
 * `commands,relay` and `projection` processes) keeps running, answers 503 + Retry-After while the database is
 * away (never 500, never a hang), and afterwards every acknowledged usage event and grant is applied exactly once.
 */
describe('ledger across PostgreSQL restarts', () => {
  const { env, topics } = ledgerTestSettings();
  const ACCOUNTS = 8;
  // How long PostgreSQL stays stopped; PG_OUTAGE_SECONDS=60 tries an outage longer than the consumers' retry budget.
  const DOWN_MS = Number(process.env.PG_OUTAGE_SECONDS ?? 5) * 1_000;
  // gpt-4o-mini: 1,000 in × 0.15/M + 1,000 out × 0.6/M = 750 µcr per event; a grant is 1 credit.
  const USAGE_MICROS = 750n;
  const GRANT_MICROS = 1_000_000n;
  let pg: PrivatePostgres | undefined;
  let commands: ServiceProcess | undefined;
  let projection: ServiceProcess | undefined;
  let producer: Producer | undefined;
  let pool: Pool | undefined;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    await createTopics(topics);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([commands?.kill('SIGKILL'), projection?.kill('SIGKILL')]);
    await producer?.disconnect().catch(() => undefined);
    if (pool) await endPool(pool).catch(() => undefined);
    await pg?.destroy();
  });

  it('keeps serving with 503 + Retry-After while PostgreSQL restarts, and applies every acknowledged event exactly once', async () => {
    if (!pg) throw new Error('no PostgreSQL');
    const db = pg;
    const ledgerEnv = { ...env, DATABASE_URL: db.url, DATABASE_SCHEMA: 'ledger', CONSUMER_MAX_BATCH: '100' };
    commands = await startServiceProcess('ledger', { ...ledgerEnv, WORKERS: 'commands,relay' });
    projection = await startServiceProcess('ledger', { ...ledgerEnv, WORKERS: 'projection' });
    const processes = [commands, projection];
    // The process list, each with how it ended (none, if all is well) and the end of its log.
    const exited = () =>
      processes
        .filter((p) => p.child.exitCode !== null || p.child.signalCode !== null)
        .map((p) => ({ exitCode: p.child.exitCode, signal: p.child.signalCode, log: p.output().slice(-1500) }));

    const usageProducer = (producer = new Kafka({ clientId: 'pg-restart-test', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING })
      .producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner }));
    await usageProducer.connect();

    // Load: usage through Kafka (acknowledged = acked by the broker) and grants over HTTP (acknowledged = 2xx).
    const usageAcked = new Map<string, number>();
    const grants = new Acknowledgements<string, number>();
    const grantsAcked = grants.acked;
    let sequence = 0;

    const usageLoop = async (running: () => boolean) => {
      const occurredAt = new Date().toISOString();
      while (running()) {
        const batch = Array.from({ length: 25 }, () => {
          const n = sequence++;
          return { id: `usage-${n}`, account: n % ACCOUNTS };
        });
        await usageProducer.send({
          topic: env.USAGE_EVENTS_TOPIC,
          acks: -1,
          messages: batch.map(({ id, account }) => ({
            key: `acct-${account}`,
            value: JSON.stringify({ id, type: 'UsageRecorded', version: 1, accountId: `acct-${account}`, occurredAt, data: { feature: 'chat', model: 'gpt-4o-mini', inputTokens: 1000, outputTokens: 1000 } }),
          })),
        });
        for (const { id, account } of batch) usageAcked.set(id, account);
        await sleep(50);
      }
    };

    const http = new OutageAnswers(commands.base, API_KEY);
    const call = (path: string, body?: unknown) => http.request(body === undefined ? 'GET' : 'POST', path, body);

    let grantNo = 0;
    const httpLoop = async (running: () => boolean) => {
      while (running()) {
        const key = `g-${grantNo++}`;
        const account = grantNo % ACCOUNTS;
        const status = await call(`/v1/accounts/acct-${account}/grants`, { reason: 'test grant', idempotencyKey: key, amount: '1' });
        grants.record(key, status, account);
        await call(`/v1/accounts/acct-${account}/balance`);
        await sleep(20);
      }
    };

    const load = loadWhile(usageLoop, httpLoop, httpLoop);
    let timeline: OutageTimeline;
    try {
      // A fast restart (every session terminated, 57P01), then down for DOWN_MS (connections refused), then back.
      timeline = await postgresOutage(db, {
        warmupMs: 3_000,
        afterRestartMs: 4_000,
        downMs: DOWN_MS,
        afterStartMs: 4_000,
        onStep: (step) => void (step === 'down' && expect(exited()).toEqual([])),
      });
    } finally {
      await load.stop();
    }
    expect(exited()).toEqual([]);

    // While it was down, the API answered 503 with Retry-After and a stable code: never 500, never a hang.
    const outcome = http.outcome(timeline, ['DEPENDENCY_UNAVAILABLE', 'ACCOUNT_BUSY']);
    // A 500 is logged with its error ('request failed'): a wrong answer fails here first, showing those lines.
    if (outcome.wrong.length > 0) expect(processes.flatMap((p) => p.output().split('\n').filter((line) => line.includes('request failed')).slice(-5))).toEqual([]);
    expect(outcome).toMatchObject({ failures: [], wrong: [], notUnavailableWhileDown: [] });
    expect(outcome.duringOutage).toBeGreaterThan(0);
    const { restartedAt, startedAt } = timeline;

    // Grants whose answer was not 2xx may or may not have been applied: retried with the same key, they count once.
    await grants.resendUnsure((key, account) => call(`/v1/accounts/acct-${account}/grants`, { reason: 'test grant', idempotencyKey: key, amount: '1' })).catch((error: Error) => {
      throw new Error(`${error.message}; last answers ${JSON.stringify(http.answers.slice(-3))}; ledger log: ${commands?.output().slice(-3000)}`);
    });

    const check = (pool = new Pool({ connectionString: db.url, max: 2 }));
    const one = async (sql: string) => (await check.query(sql)).rows[0];
    const s = '"ledger"';
    await waitFor(async () => Number((await one(`select count(*) as n from ${s}.events where type = 'UsageDebited'`)).n) === usageAcked.size, 60_000, 250);
    expect(Number((await one(`select count(*) as n from (select data->>'usageId' from ${s}.events where type = 'UsageDebited' group by 1 having count(*) > 1) d`)).n)).toBe(0);
    expect(Number((await one(`select count(*) as n from ${s}.events where type = 'CreditsGranted'`)).n)).toBe(grantsAcked.size);

    // The read models (relay → ledger.events → projection process) agree to the micro-credit.
    const expected = new Map<string, bigint>();
    for (const account of usageAcked.values()) expected.set(`acct-${account}`, (expected.get(`acct-${account}`) ?? 0n) - USAGE_MICROS);
    for (const account of grantsAcked.values()) expected.set(`acct-${account}`, (expected.get(`acct-${account}`) ?? 0n) + GRANT_MICROS);
    const net = async () => {
      const { rows } = await check.query<{ account_id: string; net: string }>(`select account_id, (available - overdraft)::text as net from ${s}.balances`);
      return new Map(rows.map((r) => [r.account_id, BigInt(r.net)]));
    };
    await waitFor(async () => {
      const actual = await net();
      return [...expected].every(([account, micros]) => actual.get(account) === micros);
    }, 60_000, 250).catch(async () => undefined);
    expect(Object.fromEntries([...(await net())].map(([a, m]) => [a, m.toString()]))).toEqual(Object.fromEntries([...expected].map(([a, m]) => [a, m.toString()])));
    // The relay leads again: its advisory lock died with its connection, so it must have noticed and re-taken it.
    await waitFor(async () => Number((await one(`select count(*) as n from pg_locks where locktype = 'advisory' and granted`)).n) === 1, 15_000, 250);
    expect(exited()).toEqual([]);
    // Figures: how long after PostgreSQL was back the API answered 2xx again.
    console.log(JSON.stringify({
      usageEvents: usageAcked.size, grants: grantsAcked.size, answers: http.answers.length, unavailable: http.answers.filter((a) => a.status === 503).length,
      duringOutage: outcome.duringOutage, okAfterRestartMs: http.firstOkAfter(restartedAt), okAfterStartMs: http.firstOkAfter(startedAt),
    }));
  }, 110_000 + DOWN_MS);
});


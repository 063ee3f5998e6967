import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { Pool } from 'pg';
import { ensureTopics } from '@tally/kafka';
import {
  Acknowledgements, OutageAnswers, createTestSchema, startPrivateKafka, startServiceProcess, testDatabaseUrl, waitFor, type PrivateKafka, type ServiceProcess,
} from '@tally/testing';
import { API_KEY, ledgerTestSettings } from './ledger.harness';


/**
 * The Kafka broker crashes (kill -9) and stays down a few seconds under load, on a broker of the test's own: the
 * ledger keeps running and keeps serving what needs no broker (grants, balances: never a 5xx but 503), and once
 * the broker is back every acknowledged usage event and grant is applied exactly once and reaches the read model.
 */
describe('ledger across a Kafka broker restart', () => {
  const { env, topics } = ledgerTestSettings();
  const ACCOUNTS = 6;
  const USAGE_MICROS = 750n;
  const GRANT_MICROS = 1_000_000n;
  let kafka: PrivateKafka | undefined;
  let schema: Awaited<ReturnType<typeof createTestSchema>> | undefined;
  let ledger: ServiceProcess | undefined;
  let producer: Producer | undefined;
  let pool: Pool | undefined;

  beforeAll(async () => {
    kafka = await startPrivateKafka();
    schema = await createTestSchema('ledger_kafka_restart');
    await ensureTopics(new Kafka({ clientId: 'kafka-restart-admin', brokers: [kafka.broker], logLevel: logLevel.NOTHING }), topics, 3);
  }, 90_000);

  afterAll(async () => {
    await ledger?.kill('SIGKILL');
    await producer?.disconnect().catch(() => undefined);
    await pool?.end().catch(() => undefined);
    await kafka?.destroy();
    await schema?.drop();
  });

  it('keeps running and serving through a broker crash, then applies every acknowledged event exactly once', async () => {
    if (!kafka || !schema) throw new Error('setup failed');
    const [broker, s] = [kafka, `"${schema.schema}"`];
    const running = (ledger = await startServiceProcess('ledger', { ...env, KAFKA_BROKERS: broker.broker, DATABASE_SCHEMA: schema.schema, CONSUMER_MAX_BATCH: '100' }));
    const alive = () => (running.child.exitCode === null && running.child.signalCode === null ? 'running' : `exited ${running.child.exitCode ?? running.child.signalCode}: ${running.output().slice(-1500)}`);
    const usageProducer = (producer = new Kafka({ clientId: 'kafka-restart-test', brokers: [broker.broker], logLevel: logLevel.NOTHING, retry: { retries: 2 } })
      .producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner }));
    await usageProducer.connect();
    const http = new OutageAnswers(running.base, API_KEY);

    const usageAcked = new Map<string, number>();
    const grants = new Acknowledgements<string, number>();
    const { acked: grantsAcked, unsure: grantsUnsure } = grants;
    let loading = true;
    let sequence = 0;
    const usageLoop = async () => {
      const occurredAt = new Date().toISOString();
      while (loading) {
        const batch = Array.from({ length: 20 }, () => ({ id: `usage-${sequence}`, account: sequence++ % ACCOUNTS }));
        const messages = batch.map(({ id, account }) => ({
          key: `acct-${account}`,
          value: JSON.stringify({ id, type: 'UsageRecorded', version: 1, accountId: `acct-${account}`, occurredAt, data: { feature: 'chat', model: 'gpt-4o-mini', inputTokens: 1000, outputTokens: 1000 } }),
        }));
        // A send that failed is sent again, same ids, until the broker acknowledges it (the ledger dedupes by id).
        for (;;) {
          try {
            await usageProducer.send({ topic: env.USAGE_EVENTS_TOPIC, acks: -1, messages });
            break;
          } catch {
            await sleep(500);
          }
        }
        for (const { id, account } of batch) usageAcked.set(id, account);
        await sleep(50);
      }
    };
    let grantNo = 0;
    const httpLoop = async () => {
      while (loading) {
        const key = `g-${grantNo++}`;
        const account = grantNo % ACCOUNTS;
        const status = await http.request('POST', `/v1/accounts/acct-${account}/grants`, { reason: 'test grant', idempotencyKey: key, amount: '1' });
        grants.record(key, status, account);
        await http.request('GET', `/v1/accounts/acct-${account}/balance`);
        await sleep(20);
      }
    };

    const load = Promise.all([usageLoop(), httpLoop()]);
    let downFrom = 0;
    let downUntil = 0;
    let startedAt = 0;
    try {
      await sleep(2_000);
      await broker.stop('SIGKILL');
      downFrom = Date.now();
      await sleep(5_000);
      expect(alive()).toBe('running');
      downUntil = Date.now();
      await broker.start();
      startedAt = Date.now();
      await sleep(3_000);
    } finally {
      loading = false;
      await load;
    }
    expect(alive()).toBe('running');
    expect(http.failures).toEqual([]);
    expect(http.wrong(['DEPENDENCY_UNAVAILABLE', 'ACCOUNT_BUSY'])).toEqual([]);
    // Grants and balances need PostgreSQL only: they kept working while the broker was down.
    const duringOutage = http.between(downFrom, downUntil);
    expect(duringOutage.length).toBeGreaterThan(0);
    expect(duringOutage.filter((a) => a.status >= 300)).toEqual([]);
    expect(grantsUnsure.size).toBe(0);

    const check = (pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 }));
    const one = async (sql: string) => (await check.query(sql)).rows[0];
    await waitFor(async () => Number((await one(`select count(*) as n from ${s}.events where type = 'UsageDebited'`)).n) === usageAcked.size, 60_000, 250)
      .catch(() => undefined);
    expect(Number((await one(`select count(*) as n from ${s}.events where type = 'UsageDebited'`)).n)).toBe(usageAcked.size);
    expect(Number((await one(`select count(*) as n from (select data->>'usageId' from ${s}.events where type = 'UsageDebited' group by 1 having count(*) > 1) d`)).n)).toBe(0);
    expect(Number((await one(`select count(*) as n from ${s}.events where type = 'CreditsGranted'`)).n)).toBe(grantsAcked.size);

    // Through the relay, ledger.events.v1 and the projection (all on the restarted broker), to the micro-credit.
    const expected = new Map<string, string>();
    const add = (account: number, micros: bigint) => expected.set(`acct-${account}`, (BigInt(expected.get(`acct-${account}`) ?? '0') + micros).toString());
    for (const account of usageAcked.values()) add(account, -USAGE_MICROS);
    for (const account of grantsAcked.values()) add(account, GRANT_MICROS);
    const net = async () => Object.fromEntries(
      (await check.query<{ account_id: string; net: string }>(`select account_id, (available - overdraft)::text as net from ${s}.balances`)).rows.map((r) => [r.account_id, r.net]),
    );
    await waitFor(async () => {
      const actual = await net();
      return [...expected].every(([account, micros]) => actual[account] === micros);
    }, 60_000, 250).catch(() => undefined);
    const convergedAfterStartMs = Date.now() - startedAt;
    expect(await net()).toEqual(Object.fromEntries(expected));
    expect(alive()).toBe('running');
    console.log(JSON.stringify({ usageEvents: usageAcked.size, grants: grantsAcked.size, answers: http.answers.length, duringOutage: duringOutage.length, convergedAfterStartMs }));
  }, 150_000);
});

import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { Pool } from 'pg';
import { startServiceProcess, testDatabaseUrl, testKafkaBrokers, waitFor, type ServiceProcess } from '@tally/testing';
import { createTestSchema, createTopics, ledgerTestSettings } from './ledger-test-env';

/**
 * Issue 3: restart the ledger mid-stream with kill -9. The usage consumer stores offsets with its events in one
 * transaction, so after the restart every usage event is applied exactly once — none lost, none twice — and the
 * read model (fed by the relay) agrees.
 */
describe('ledger killed with SIGKILL mid-stream', () => {
  const { env, topics } = ledgerTestSettings();
  const TOTAL = 3000;
  const ACCOUNTS = 20;
  // gpt-4o-mini: 1,000 in × 0.15/M + 1,000 out × 0.6/M = 0.00075 credits = 750 µcr per event
  const PRICE_MICROS = 750n;
  let schema: string;
  let drop: () => Promise<void>;
  let pool: Pool;
  let ledger: ServiceProcess | undefined;

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('ledger_crash'));
    await createTopics(topics);
    pool = new Pool({ connectionString: testDatabaseUrl() });
  });

  afterAll(async () => {
    await ledger?.kill('SIGKILL');
    await pool.end();
    await drop();
  });

  const count = async (sql: string) => Number((await pool.query(sql)).rows[0].n);

  it('applies every usage event exactly once across a kill -9 and restart', async () => {
    const producer = new Kafka({ clientId: 'crash-test', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING })
      .producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const occurredAt = new Date().toISOString();
    const messages = Array.from({ length: TOTAL }, (_, i) => {
      const accountId = `crash-${i % ACCOUNTS}`;
      return {
        key: accountId,
        value: JSON.stringify({ id: `usage-${i}`, type: 'UsageRecorded', version: 1, accountId, occurredAt, data: { feature: 'chat', model: 'gpt-4o-mini', inputTokens: 1000, outputTokens: 1000 } }),
      };
    });
    for (let i = 0; i < TOTAL; i += 500) await producer.send({ topic: env.USAGE_EVENTS_TOPIC, acks: -1, messages: messages.slice(i, i + 500) });
    await producer.disconnect();

    const ledgerEnv = { ...env, DATABASE_SCHEMA: schema, CONSUMER_MAX_BATCH: '50' };
    ledger = await startServiceProcess('ledger', ledgerEnv);
    const debits = `select count(*) as n from "${schema}".events where type = 'UsageDebited'`;
    const before = await waitFor(async () => {
      const n = await count(debits);
      return n > 0 ? n : undefined;
    }, 60_000, 5);
    await ledger.kill('SIGKILL');
    const atKill = await count(debits);
    expect(atKill).toBeLessThan(TOTAL); // it really died mid-stream
    expect(atKill).toBeGreaterThanOrEqual(before);

    ledger = await startServiceProcess('ledger', ledgerEnv);
    await waitFor(async () => (await count(debits)) === TOTAL, 120_000, 200);
    await new Promise((r) => setTimeout(r, 1000)); // any redelivery would land now
    expect(await count(debits)).toBe(TOTAL);
    expect(await count(`select count(*) as n from (select data->>'usageId' from "${schema}".events where type = 'UsageDebited' group by 1 having count(*) > 1) d`)).toBe(0);

    // The read model, fed through the relay and the projection, sees the same total: each account is in overdraft.
    const expected = PRICE_MICROS * BigInt(TOTAL);
    await waitFor(async () => {
      const { rows } = await pool.query(`select coalesce(sum(overdraft), 0)::text as total, count(*)::int as accounts from "${schema}".balances`);
      return rows[0].total === expected.toString() && rows[0].accounts === ACCOUNTS;
    }, 60_000, 200);
  });
});

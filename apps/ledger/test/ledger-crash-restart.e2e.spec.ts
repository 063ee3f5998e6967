import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { Pool } from 'pg';
import { ensureOffsetsTable, readStoredOffsets } from '@tally/kafka';
import { startServiceProcess, testDatabaseUrl, testKafkaBrokers, waitFor, type ServiceProcess } from '@tally/testing';
import { createTestSchema, createTopics, ledgerTestSettings } from './ledger.harness';

/**
 * Issue 3: restart the ledger mid-stream with kill -9; after the restart every usage event is applied exactly
 * once — none lost, none twice — and the read model (fed by the relay) agrees. Issue 13: on both exactly-once
 * paths of the usage consumer (README, "Money and exactly-once"):
 * - shared transaction: events and the partition offset commit in one PostgreSQL transaction;
 * - idempotent append, then offset (EVENT_STORE_TRANSACTIONAL=false, the path EventStoreDB takes): the append
 *   commits on its own, the offset after it; a redelivery is decided again and appends nothing twice.
 */
describe.each([
  { path: 'shared transaction', EVENT_STORE_TRANSACTIONAL: 'true' },
  { path: 'idempotent append, then offset (no shared transaction)', EVENT_STORE_TRANSACTIONAL: 'false' },
])('ledger killed with SIGKILL mid-stream: $path', ({ EVENT_STORE_TRANSACTIONAL }) => {
  const settings = ledgerTestSettings();
  const topics = settings.topics;
  const env: Record<string, string> = { ...settings.env, EVENT_STORE_TRANSACTIONAL };
  const sharedTransaction = EVENT_STORE_TRANSACTIONAL === 'true';
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
    await releaseStalledOffsetWrites();
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
    await offsetsAtEnd(env.CONSUMER_GROUP, env.USAGE_EVENTS_TOPIC); // sentinel: every redelivered message was consumed again
    expect(await count(debits)).toBe(TOTAL);
    expect(await count(`select count(*) as n from (select data->>'usageId' from "${schema}".events where type = 'UsageDebited' group by 1 having count(*) > 1) d`)).toBe(0);

    // The read model, fed through the relay and the projection, sees the same total: each account is in overdraft.
    const expected = PRICE_MICROS * BigInt(TOTAL);
    await waitFor(async () => {
      const { rows } = await pool.query(`select coalesce(sum(overdraft), 0)::text as total, count(*)::int as accounts from "${schema}".balances`);
      return rows[0].total === expected.toString() && rows[0].accounts === ACCOUNTS;
    }, 60_000, 200);
  });
  /**
   * The kill lands exactly between "events appended" and "offset stored": a trigger on the offsets table holds
   * every advance of the usage group's offset (pg_sleep) until the ledger is killed. On the idempotent path the
   * events of the first batches are already committed at that moment and their offsets are not; on the shared
   * path nothing of those batches is visible. Either way the restart applies every event once.
   */
  it('applies every usage event exactly once when killed between the append and the offset commit', async () => {
    await ledger?.kill('SIGKILL'); // the previous test's process: one ledger per schema at a time
    const window = ledgerTestSettings();
    const windowEnv: Record<string, string> = { ...window.env, EVENT_STORE_TRANSACTIONAL, DATABASE_SCHEMA: schema, CONSUMER_MAX_BATCH: '50' };
    await createTopics(window.topics);
    const EVENTS = 1000;
    const prefix = 'window';
    await ensureOffsetsTable(pool, schema);
    await pool.query(`create table "${schema}".test_offset_window (armed boolean not null)`);
    await pool.query(`insert into "${schema}".test_offset_window values (true)`);
    await pool.query(`
      create function "${schema}".test_hold_offset() returns trigger language plpgsql as $$
      begin
        if NEW.group_id = '${windowEnv.CONSUMER_GROUP}' and NEW.committed_offset > OLD.committed_offset
           and (select armed from "${schema}".test_offset_window) then
          perform pg_sleep(120);
        end if;
        return NEW;
      end $$`);
    await pool.query(`create trigger test_hold_offset before update on "${schema}".kafka_consumer_offsets
                      for each row execute function "${schema}".test_hold_offset()`);
    await produceUsage(windowEnv.USAGE_EVENTS_TOPIC, prefix, EVENTS);

    const debits = `select count(*) as n from "${schema}".events where type = 'UsageDebited' and data->>'usageId' like '${prefix}-%'`;
    ledger = await startServiceProcess('ledger', windowEnv);
    // At least one batch is inside the window: its offset write is held, and (idempotent path) its events are in.
    await waitFor(async () => (await heldOffsetWrites()) > 0 && (sharedTransaction || (await count(debits)) > 0), 60_000, 5);
    await ledger.kill('SIGKILL');
    const atKill = await count(debits);
    const storedAtKill = await readStoredOffsets(pool, schema, windowEnv.CONSUMER_GROUP, windowEnv.USAGE_EVENTS_TOPIC);
    expect([...storedAtKill.values()].every((offset) => offset === -1n)).toBe(true); // no offset got stored
    if (sharedTransaction) expect(atKill).toBe(0); // events wait for the offsets' transaction
    else expect(atKill).toBeGreaterThan(0); // appended first, committed on their own
    expect(atKill).toBeLessThan(EVENTS);
    await pool.query(`update "${schema}".test_offset_window set armed = false`);
    // The killed process's sessions would end once PostgreSQL noticed the dead socket; end them now.
    await releaseStalledOffsetWrites();

    ledger = await startServiceProcess('ledger', windowEnv);
    await waitFor(async () => (await count(debits)) === EVENTS, 120_000, 200);
    await offsetsAtEnd(windowEnv.CONSUMER_GROUP, windowEnv.USAGE_EVENTS_TOPIC); // sentinel, as above
    expect(await count(debits)).toBe(EVENTS);
    expect(await count(`select count(*) as n from (select data->>'usageId' from "${schema}".events where type = 'UsageDebited' and data->>'usageId' like '${prefix}-%' group by 1 having count(*) > 1) d`)).toBe(0);
  });

  async function produceUsage(topic: string, prefix: string, total: number): Promise<void> {
    const producer = new Kafka({ clientId: 'crash-test', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING })
      .producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const occurredAt = new Date().toISOString();
    const messages = Array.from({ length: total }, (_, i) => {
      const accountId = `${prefix}-${i % ACCOUNTS}`;
      return {
        key: accountId,
        value: JSON.stringify({ id: `${prefix}-${i}`, type: 'UsageRecorded', version: 1, accountId, occurredAt, data: { feature: 'chat', model: 'gpt-4o-mini', inputTokens: 1000, outputTokens: 1000 } }),
      };
    });
    for (let i = 0; i < total; i += 500) await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 500) });
    await producer.disconnect();
  }

  /** Sentinel: every partition's offset is stored at its end, so every message (redeliveries too) was consumed. */
  async function offsetsAtEnd(group: string, topic: string): Promise<void> {
    await waitFor(async () => {
      const stored = await readStoredOffsets(pool, schema, group, topic);
      const ends = await topicEnds(topic);
      return [...ends].every(([partition, end]) => end === 0n || stored.get(partition) === end - 1n);
    }, 60_000, 200);
  }

  async function topicEnds(topic: string): Promise<Map<number, bigint>> {
    const admin = new Kafka({ clientId: 'crash-test-admin', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
    } finally {
      await admin.disconnect();
    }
  }

  /** Sessions of this test's schema held in the trigger's pg_sleep. */
  async function heldOffsetWrites(): Promise<number> {
    return count(`select count(*) as n from pg_stat_activity
                   where wait_event = 'PgSleep' and query like '%${schema}%kafka_consumer_offsets%' and pid <> pg_backend_pid()`);
  }

  async function releaseStalledOffsetWrites(): Promise<void> {
    if (!schema) return;
    await pool.query(`select pg_terminate_backend(pid) from pg_stat_activity
                       where wait_event = 'PgSleep' and query like '%${schema}%kafka_consumer_offsets%' and pid <> pg_backend_pid()`);
  }
});

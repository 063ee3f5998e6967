import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import pino from 'pino';
import { PostgresEventStore, START } from '@tally/event-store';
import { KafkaProducer, createKafkaClient, ensureTopics } from '@tally/kafka';
import { NotReadyError, loadConfig } from '@tally/shared';
import { createTestSchema, startPrivateKafka, testDatabaseUrl, testKafkaBrokers, uniqueSuffix, waitFor } from '@tally/testing';
import { LedgerConfig } from '../src/config/ledger.config';
import { migrateLedger } from '../src/database/data-source.provider';
import { LedgerEventsRelay } from '../src/relay/ledger-events.relay';

/**
 * The relay on the real database and broker, over many pages (RELAY_BATCH 7): it reads the next page while it
 * publishes one, and writes each page's checkpoint while the next is on its way. Whatever the overlap, every
 * event reaches ledger.events.v1 once, in stream order per account, and once stopped the stored checkpoint is
 * the last event's (stop waits for the checkpoint in flight).
 */
describe('ledger events relay (PostgreSQL event store → Kafka)', () => {
  const kafka = createKafkaClient({ clientId: `relay-test-${uniqueSuffix()}`, brokers: testKafkaBrokers() });
  let schema: string;
  let drop: () => Promise<void>;
  let pool: Pool;
  let store: PostgresEventStore;
  let producer: KafkaProducer;

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('relay'));
    await migrateLedger(loadConfig(LedgerConfig, { DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema }));
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 4 });
    store = new PostgresEventStore({ pool, schema, listen: true });
    producer = new KafkaProducer(kafka);
  });

  afterAll(async () => {
    await producer.disconnect();
    await store.close();
    await pool.end();
    await drop();
  });

  it('publishes every event once, in order per account, over many pages, and stores the last checkpoint', async () => {
    const topic = `t.${uniqueSuffix()}.ledger-events`;
    await ensureTopics(kafka, [topic], 3);
    const accounts = ['account-relay-a', 'account-relay-b', 'account-relay-c'];
    // 60 events in 20 transactions, each appending to all three streams: pages of 7 cut through transactions.
    for (let version = 0; version < 20; version++) {
      await store.appendMany(
        accounts.map((streamId) => ({ streamId, expectedVersion: version, events: [{ id: randomUUID(), type: 'Tested', data: { version } }] })),
      );
    }
    const stored = await store.readAll({ after: START, limit: 100 });
    expect(stored).toHaveLength(60);

    const config = loadConfig(LedgerConfig, { DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema, LEDGER_EVENTS_TOPIC: topic, RELAY_BATCH: '7' });
    const relay = new LedgerEventsRelay({ store, pool, producer, config, logger: pino({ level: 'silent' }) });
    const received: { key: string; streamVersion: number }[] = [];
    const consumer = kafka.consumer({ groupId: `relay-reader-${uniqueSuffix()}`, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const envelope = JSON.parse(message.value?.toString() ?? '{}') as { streamVersion: number };
        received.push({ key: message.key?.toString() ?? '', streamVersion: envelope.streamVersion });
      },
    });
    try {
      await relay.start();
      await waitFor(() => received.length >= 60, 30_000);
      await relay.stop();

      expect(received).toHaveLength(60);
      for (const account of ['relay-a', 'relay-b', 'relay-c']) {
        expect(received.filter(({ key }) => key === account).map(({ streamVersion }) => streamVersion)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      }
      const { rows } = await pool.query<{ checkpoint: string }>(`select checkpoint from "${schema}".relay_checkpoints where name = 'ledger-events'`);
      expect(rows).toEqual([{ checkpoint: stored[59].checkpoint }]);
    } finally {
      await relay.stop();
      await consumer.disconnect();
    }
  }, 60_000);

  // A checkpoint this store cannot read (an operator's hand edit) is refused when the relay subscribes, after it took
  // the lock: the lock must go back with it, or no instance could ever publish again until this one restarted.
  it('refuses a stored checkpoint it cannot read, and gives its lock back', async () => {
    await pool.query(
      `insert into "${schema}".relay_checkpoints (name, checkpoint, updated_at) values ('ledger-events', 'not a checkpoint', now())
       on conflict (name) do update set checkpoint = excluded.checkpoint`,
    );
    const config = loadConfig(LedgerConfig, { DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema });
    const relay = new LedgerEventsRelay({ store, pool, producer, config, logger: pino({ level: 'silent' }) });
    await expect(relay.start()).rejects.toThrow();
    const other = await pool.connect();
    try {
      const { rows } = await other.query<{ locked: boolean }>(`select pg_try_advisory_lock(hashtext('tally-ledger-relay'), hashtext($1)) as locked`, [schema]);
      expect(rows[0].locked).toBe(true);
      await other.query('select pg_advisory_unlock_all()');
    } finally {
      other.release();
      await relay.stop();
    }
  });
  // A broker that stops answering (frozen, a network path that drops packets) fails a send only after its request
  // timeout and retries: here about 20 s a failure. The relay's failure streak used to end after 15 s without a new
  // failure, so each failure began a streak of one and readiness said ready while nothing was published.
  it('is not ready while every publish fails slowly, and publishes and is ready again once the broker answers', async () => {
    const broker = await startPrivateKafka();
    const slowKafka = createKafkaClient({ clientId: `relay-slow-${uniqueSuffix()}`, brokers: [broker.broker], requestTimeout: 10_000, retry: { retries: 1, initialRetryTime: 8_000, maxRetryTime: 8_000 } });
    const slowProducer = new KafkaProducer(slowKafka);
    const topic = `t.${uniqueSuffix()}.frozen`;
    const config = loadConfig(LedgerConfig, { DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema, LEDGER_EVENTS_TOPIC: topic });
    const relay = new LedgerEventsRelay({ store, pool, producer: slowProducer, config, logger: pino({ level: 'silent' }) });
    const notReady = () => {
      try {
        relay.checkFlowing();
        return undefined;
      } catch (error) {
        return error;
      }
    };
    try {
      await ensureTopics(slowKafka, [topic], 1);
      await slowProducer.connect();
      await pool.query(`delete from "${schema}".relay_checkpoints`);
      await store.appendMany([{ streamId: 'account-relay-frozen', expectedVersion: 0, events: [{ id: randomUUID(), type: 'Tested', data: {} }] }]);
      broker.pause();
      await relay.start();
      const refused = await waitFor(notReady, 150_000, 500);
      expect(refused).toBeInstanceOf(NotReadyError);
      expect((refused as NotReadyError).details).toMatchObject({ where: { topic } });

      broker.resume();
      const [last] = (await store.readAll({ after: START, limit: 1_000 })).slice(-1);
      await waitFor(async () => (await pool.query(`select 1 from "${schema}".relay_checkpoints where checkpoint = $1`, [last.checkpoint])).rowCount === 1, 90_000, 500);
      await waitFor(() => notReady() === undefined, 30_000, 200);
    } finally {
      broker.resume();
      await relay.stop();
      await slowProducer.disconnect();
      await broker.destroy();
    }
  }, 300_000);
});

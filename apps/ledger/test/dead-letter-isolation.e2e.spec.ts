import type { INestApplication } from '@nestjs/common';
import { Kafka, Partitioners, logLevel, type Admin, type Producer } from 'kafkajs';
import { metricsRegistry } from '@tally/metrics';
import { testKafkaBrokers, waitFor } from '@tally/testing';
import { collect, createTestSchema, createTopics, json, ledgerTestSettings, startLedger, waitForAvailable } from './ledger.harness';

/**
 * A dead-letter topic that refuses writes slowly (here: it is missing, so every send is answered
 * UNKNOWN_TOPIC_OR_PARTITION and retried, about 70 s under the services' retry policy) holds up the consumer that
 * dead-letters, and nothing else: the relay publishes the ledger's events meanwhile, so a
 * grant reaches the balance while a poison usage waits for its dead letter. With one producer for both, the relay's
 * sends queued behind the dead letter's retries. Real broker, real PostgreSQL, real HTTP.
 */
describe('a dead-letter topic that refuses writes (real broker and database)', () => {
  const { env, topics } = ledgerTestSettings();
  let admin: Admin;
  let producer: Producer;
  let app: INestApplication | undefined;
  let api: ReturnType<typeof json>;
  let dropSchema: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    const kafka = new Kafka({ clientId: 'dlq-isolation-admin', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    await createTopics(topics.filter((topic) => topic !== env.USAGE_DLQ_TOPIC), 1);
    const schema = await createTestSchema('ledger_dlq_isolation');
    dropSchema = schema.drop;
    let base: string;
    ({ app, base } = await startLedger(env, schema.schema));
    api = json(base);
    producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
  }, 60_000);

  afterAll(async () => {
    await producer?.disconnect();
    await app?.close();
    await admin?.deleteTopics({ topics }).catch(() => undefined);
    await admin?.disconnect();
    await dropSchema?.();
  });

  it('a grant reaches the balance while a poison usage waits for its dead letter; the dead letter is written once the topic exists', async () => {
    await api.post('/v1/accounts/acct-before/grants', { reason: 'test grant', idempotencyKey: 'before', amount: '1' });
    await waitForAvailable(api, 'acct-before', '1'); // the relay and the projection run

    await producer.send({ topic: env.USAGE_EVENTS_TOPIC, messages: [{ key: 'acct-poison', value: 'not json at all' }] });
    // The usage consumer takes the poison within its next fetch and starts dead-lettering it: a send that fails
    // slowly. The grant comes once that send is under way (the ledger runs in this process: its counter of dead
    // letters moves just before the send).
    await waitFor(async () => {
      const counted = (await metricsRegistry.getSingleMetric('tally_kafka_consumer_dead_letters_total')?.get())?.values ?? [];
      return counted.some((sample) => sample.labels.topic === env.USAGE_EVENTS_TOPIC && sample.value >= 1);
    }, 20_000);
    const granted = await api.post('/v1/accounts/acct-during/grants', { reason: 'test grant', idempotencyKey: 'during', amount: '2' });
    expect(granted.status).toBe(201);
    await waitForAvailable(api, 'acct-during', '2'); // 20 s at most; behind the dead letter it took about a minute

    await createTopics([env.USAGE_DLQ_TOPIC], 1);
    const dlq = await collect(env.USAGE_DLQ_TOPIC);
    try {
      const dead = await waitFor(() => dlq.messages.find((message) => message.value === 'not json at all'), 120_000, 200);
      expect(dead.headers['x-dead-letter-reason']).toBeDefined();
    } finally {
      await dlq.stop();
    }
  }, 180_000);
});

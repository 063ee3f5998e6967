import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { ensureTopics } from '@tally/kafka';
import { hashApiKey } from '@tally/shared';
import {
  Acknowledgements, OutageAnswers, createTestSchema, startPrivateKafka, startServiceProcess, testDatabaseUrl, uniqueSuffix, waitFor, type PrivateKafka, type ServiceProcess,
} from '@tally/testing';
import { rememberedUsageBodies } from './restart-usage.fixtures';

const WRITER = 'ingest-kafka-restart-writer';

/**
 * The Kafka broker crashes (kill -9) and stays down a few seconds while usage is posted, on a broker of the
 * test's own: usage-ingest keeps running, answers 503 + Retry-After within seconds meanwhile (never 500, never a
 * hang), and every usage event it acknowledged (202) is on the topic.
 */
describe('usage-ingest across a Kafka broker restart', () => {
  const topic = `t.${uniqueSuffix()}.usage.events.v1`;
  let kafka: PrivateKafka | undefined;
  let schema: Awaited<ReturnType<typeof createTestSchema>> | undefined;
  let service: ServiceProcess | undefined;
  let consumer: Consumer | undefined;

  beforeAll(async () => {
    kafka = await startPrivateKafka();
    schema = await createTestSchema('ingest_kafka_restart');
    await ensureTopics(new Kafka({ clientId: 'ingest-kafka-restart-admin', brokers: [kafka.broker], logLevel: logLevel.NOTHING }), [topic], 3);
  }, 90_000);

  afterAll(async () => {
    await service?.kill('SIGKILL');
    await consumer?.disconnect().catch(() => undefined);
    await kafka?.destroy();
    await schema?.drop();
  });

  it('answers 503 + Retry-After within seconds while the broker is down and publishes every acknowledged usage event', async () => {
    if (!kafka || !schema) throw new Error('setup failed');
    const broker = kafka;
    const running = (service = await startServiceProcess('usage-ingest', {
      LOG_LEVEL: 'warn', DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema.schema, KAFKA_BROKERS: broker.broker, USAGE_EVENTS_TOPIC: topic,
      API_KEYS: JSON.stringify([{ name: 'writer', sha256: hashApiKey(WRITER), scopes: ['usage:write'] }]),
    }));
    const alive = () => (running.child.exitCode === null && running.child.signalCode === null ? 'running' : `exited ${running.child.exitCode ?? running.child.signalCode}: ${running.output().slice(-1500)}`);
    const http = new OutageAnswers(running.base, WRITER);
    const usage = rememberedUsageBodies();
    const requests = new Acknowledgements<string>();
    let posting = true;
    let n = 0;
    const post = async () => {
      while (posting) {
        const id = `u-${n++}`;
        const status = await http.request('POST', '/v1/usage-events', usage(id));
        requests.record(id, status);
        await sleep(20);
      }
    };
    // Many callers at once, as product services post: their sends wait behind one another for the producer.
    const load = Promise.all(Array.from({ length: 16 }, post));
    let downFrom = 0;
    let downUntil = 0;
    let startedAt = 0;
    try {
      await sleep(1_500);
      await broker.stop('SIGKILL');
      downFrom = Date.now();
      await sleep(6_000);
      downUntil = Date.now();
      expect(alive()).toBe('running');
      await broker.start();
      startedAt = Date.now();
      await sleep(3_000);
    } finally {
      posting = false;
      await load;
    }
    expect(alive()).toBe('running');
    expect(http.failures).toEqual([]);
    expect(http.wrong(['KAFKA_UNAVAILABLE', 'DEPENDENCY_UNAVAILABLE'])).toEqual([]);
    const duringOutage = http.between(downFrom, downUntil, 1_000);
    expect(duringOutage.length).toBeGreaterThan(0);
    expect(duringOutage.filter((a) => a.status !== 503)).toEqual([]);

    await requests.resendUnsure((id) => http.request('POST', '/v1/usage-events', usage(id)));
    const acked = [...requests.acked.keys()];
    const seen = new Set<string>();
    consumer = new Kafka({ clientId: 'ingest-kafka-restart-reader', brokers: [broker.broker], logLevel: logLevel.NOTHING }).consumer({ groupId: `reader-${uniqueSuffix()}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void seen.add((JSON.parse(message.value?.toString() ?? '{}') as { id: string }).id) });
    await waitFor(() => [...acked].every((id) => seen.has(id)), 30_000, 200).catch(() => undefined);
    expect([...acked].filter((id) => !seen.has(id))).toEqual([]);
    // Not a hang: a refused request is refused within seconds, not after the client library's minute of retries.
    const slowest503 = Math.max(0, ...http.answers.filter((a) => a.status === 503).map((a) => a.ms));
    expect(slowest503).toBeLessThan(5_000);
    console.log(JSON.stringify({ acked: acked.length, answers: http.answers.length, duringOutage: duringOutage.length, okAfterStartMs: http.firstOkAfter(startedAt), slowest503 }));
  }, 150_000);
});

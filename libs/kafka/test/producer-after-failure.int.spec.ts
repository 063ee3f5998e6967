import { Kafka, logLevel } from 'kafkajs';
import { startPrivateKafka, uniqueSuffix, waitFor, type PrivateKafka } from '@tally/testing';
import { KafkaProducer, createKafkaClient, ensureTopics } from '../src';
import { deleteKafkaResources, highWatermarks } from './kafka.harness';

/**
 * A send that fails after the broker may already have appended it (the answer never came back in time) must not
 * make a later send vanish. kafkajs's idempotent producer numbers each partition's batches and moves the number on
 * only when a send succeeds; after a failed send the next batch reuses the number, and a broker that did append
 * the failed one takes the next batch for its duplicate and drops it while answering success. Shown here on a
 * broker of the test's own, frozen (SIGSTOP) while a send waits, so the send times out and is appended afterwards.
 */
describe('KafkaProducer after a failed send', () => {
  let broker: PrivateKafka | undefined;

  beforeAll(async () => {
    broker = await startPrivateKafka();
  }, 90_000);

  afterAll(async () => {
    broker?.resume();
    await broker?.destroy();
  });

  it('never loses a later message to the failed send it followed', async () => {
    if (!broker) throw new Error('no broker');
    const { topic, kafka, producer } = await quickProducerOn(broker, 'after-failure');
    try {
      await producer.send(topic, [{ key: 'k', value: 'first' }]);

      broker.pause();
      await expect(producer.send(topic, [{ key: 'k', value: 'timed out, appended later' }])).rejects.toThrow();
      broker.resume();
      // The thawed broker handles the request that waited (its answer goes nowhere): the case this test is about.
      await appended(kafka, topic, 2);

      await producer.send(topic, [{ key: 'k', value: 'after the failure' }]);
      await producer.send(topic, [{ key: 'k', value: 'sentinel' }]);
      // Read up to the sentinel, sent last: whatever the topic holds before it is all there will be.
      const values = await readUntil(kafka, topic, 'sentinel');
      expect(values).toContain('timed out, appended later');
      expect(values).toContain('after the failure');
      expect(values.filter((value) => value === 'first')).toHaveLength(1);
    } finally {
      await producer.disconnect().catch(() => undefined);
    }
  }, 90_000);

  // A send asked for while another is under way went out at once on the same kafkajs producer: when the one under
  // way failed after the broker appended it, the other reused its sequence number and the broker dropped it as a
  // duplicate while answering success (a dead letter the ledger's consumers share the producer for, lost).
  it('a send asked for while a failing one is under way goes after it, through a new producer, and is kept', async () => {
    if (!broker) throw new Error('no broker');
    const { topic, kafka, producer } = await quickProducerOn(broker, 'concurrent-failure');
    try {
      await producer.send(topic, [{ key: 'k', value: 'first' }]);

      broker.pause();
      const failing = producer.send(topic, [{ key: 'k', value: 'timed out, appended later' }]);
      const waiting = producer.send(topic, [{ key: 'other', value: 'asked for meanwhile' }]);
      await expect(failing).rejects.toThrow();
      broker.resume();
      await expect(waiting).resolves.toHaveLength(1);
      // first, the one that timed out (appended once the broker thawed) and the one asked for meanwhile.
      await appended(kafka, topic, 3);

      await producer.send(topic, [{ key: 'k', value: 'sentinel' }]);
      const values = await readUntil(kafka, topic, 'sentinel');
      expect(values).toContain('timed out, appended later');
      expect(values).toContain('asked for meanwhile');
    } finally {
      broker.resume();
      await producer.disconnect().catch(() => undefined);
    }
  }, 90_000);
});

/** Waits until the one-partition topic holds `count` messages. */
async function appended(kafka: Kafka, topic: string, count: number): Promise<void> {
  await waitFor(async () => ((await highWatermarks(kafka, topic)).get(0) ?? 0) >= count, 30_000);
}

/**
 * A one-partition topic on `broker` and a KafkaProducer with short timeouts and one retry (the least an idempotent
 * producer takes): a send fails fast while the broker is frozen.
 */
async function quickProducerOn(broker: PrivateKafka, name: string): Promise<{ topic: string; kafka: Kafka; producer: KafkaProducer }> {
  const topic = `t.${uniqueSuffix()}.${name}`;
  const kafka = createKafkaClient({ clientId: `${name}-${uniqueSuffix()}`, brokers: [broker.broker] });
  const quick = new Kafka({ clientId: `quick-${name}`, brokers: [broker.broker], requestTimeout: 1_500, retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 200 }, logLevel: logLevel.NOTHING });
  await ensureTopics(kafka, [topic], 1);
  return { topic, kafka, producer: new KafkaProducer(quick) };
}

async function readUntil(kafka: Kafka, topic: string, last: string): Promise<string[]> {
  const groupId = `reader-${uniqueSuffix()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
  const values: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void values.push(message.value?.toString() ?? '') });
    await waitFor(() => values.includes(last), 20_000);
    return values;
  } finally {
    await consumer.disconnect();
    await deleteKafkaResources(kafka, [], [groupId]);
  }
}

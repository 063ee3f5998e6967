import { testKafkaBrokers } from '@tally/testing';
import type { Kafka, ProducerConfig } from 'kafkajs';
import { KafkaProducer, createKafkaClient, ensureTopics } from '../src';
import { deleteKafkaResources, readMessages, uniqueSuffix } from './kafka.harness';

/**
 * One send is under way at a time; the sends asked for meanwhile go together as the next one (natural batching:
 * usage-ingest's concurrent requests share a produce request instead of queueing one behind another). Each caller's
 * send resolves once its own messages are acknowledged, and the topic holds every message in the order asked for.
 */
describe('KafkaProducer with concurrent senders', () => {
  const kafka = createKafkaClient({ clientId: `batching-it-${uniqueSuffix()}`, brokers: testKafkaBrokers() });
  const topic = `t.${uniqueSuffix()}.batching`;
  const producer = new KafkaProducer(kafka, { batchConcurrentSends: true });

  beforeAll(() => ensureTopics(kafka, [topic], 1));

  afterAll(async () => {
    await producer.disconnect();
    await deleteKafkaResources(kafka, [topic], []);
  });

  it('sends what waits behind a send as one, in the order asked for, and acknowledges every caller', async () => {
    const senders = Array.from({ length: 20 }, (_, sender) => Array.from({ length: 5 }, (_, i) => ({ key: 'k', value: `${sender}-${i}` })));

    const answers = await Promise.all(senders.map((messages) => producer.send(topic, messages)));

    // One partition: the base offset of the send that carried each caller's messages. Fewer sends than callers.
    const sends = new Set(answers.map(([metadata]) => metadata.baseOffset));
    expect(sends.size).toBeGreaterThan(1);
    expect(sends.size).toBeLessThan(senders.length);
    const stored = await readMessages(kafka, topic, 100);
    expect(stored.map((message) => message.value?.toString())).toEqual(senders.flat().map((message) => message.value));
  });

  it('fails only the caller whose messages the broker refused when one send carried several', async () => {
    const tooLarge = 'x'.repeat(1_100_000); // over the broker's message.max.bytes (1 MiB)

    const results = await Promise.allSettled([
      producer.send(topic, [{ key: 'k', value: 'alone' }]), // nothing under way: sent at once
      producer.send(topic, [{ key: 'k', value: 'before' }]), // these three wait, then go together
      producer.send(topic, [{ key: 'k', value: tooLarge }]),
      producer.send(topic, [{ key: 'k', value: 'after' }]),
    ]);

    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const stored = (await readMessages(kafka, topic, 103)).map((message) => message.value?.toString()).slice(100);
    expect(stored).toContain('after');
  });

  it('on disconnect, sends every waiting caller first and leaves no connection behind', async () => {
    const { client, connected } = countingConnections(kafka);
    const closing = new KafkaProducer(client, { batchConcurrentSends: true });
    const senders = Array.from({ length: 10 }, (_, sender) => [{ key: 'k', value: `closing-${sender}` }]);

    const sends = Promise.allSettled(senders.map((messages) => closing.send(topic, messages)));
    await closing.disconnect();
    const results = await sends;

    expect(results.map((result) => result.status)).toEqual(senders.map(() => 'fulfilled'));
    expect(connected()).toBe(0);
  });

  it('without batching too, on disconnect, lets the sends under way be acknowledged first', async () => {
    const { client, connected } = countingConnections(kafka);
    const closing = new KafkaProducer(client);
    await closing.connect();
    const senders = Array.from({ length: 10 }, (_, sender) => [{ key: 'k', value: `in-flight-${sender}` }]);

    const sends = Promise.allSettled(senders.map((messages) => closing.send(topic, messages)));
    await closing.disconnect();
    const results = await sends;

    expect(results.map((result) => (result.status === 'rejected' ? String(result.reason) : result.status))).toEqual(senders.map(() => 'fulfilled'));
    expect(connected()).toBe(0);
  });
});

/** The kafka client, whose producers count how many of them are connected (kafkajs' own connect/disconnect events). */
function countingConnections(kafka: Kafka): { client: Kafka; connected: () => number } {
  let connected = 0;
  const client = Object.create(kafka) as Kafka;
  client.producer = (config?: ProducerConfig) => {
    const producer = kafka.producer(config);
    producer.on(producer.events.CONNECT, () => (connected += 1));
    producer.on(producer.events.DISCONNECT, () => (connected -= 1));
    return producer;
  };
  return { client, connected: () => connected };
}

import { Partitioners, type Kafka } from 'kafkajs';
import { KafkaProducer, chunkBySize, isUnreachable, keyPartitioner, type OutgoingMessage } from './kafka.producer';

const message = (key: string, valueBytes: number): OutgoingMessage => ({ key, value: 'x'.repeat(valueBytes) });

describe('chunkBySize', () => {
  it('keeps a send that fits in one chunk', () => {
    const messages = [message('a', 100), message('b', 100)];
    expect(chunkBySize(messages, 10_000)).toEqual([messages]);
  });

  it('splits in order so that no chunk exceeds the limit', () => {
    const messages = Array.from({ length: 10 }, (_, i) => message(`k${i}`, 1_000));
    const chunks = chunkBySize(messages, 3_500);
    expect(chunks.map((chunk) => chunk.length)).toEqual([3, 3, 3, 1]);
    expect(chunks.flat()).toEqual(messages);
  });

  it('counts headers and multi-byte characters as bytes, not characters', () => {
    const wide = { key: 'k', value: 'é'.repeat(500), headers: { reason: 'r'.repeat(500) } };
    expect(chunkBySize([wide, wide], 2_000)).toHaveLength(2);
  });

  it('sends a message bigger than the limit alone rather than dropping it', () => {
    const messages = [message('a', 10), message('big', 5_000), message('c', 10)];
    expect(chunkBySize(messages, 1_000)).toEqual([[messages[0]], [messages[1]], [messages[2]]]);
  });

  it('gives no chunk for no messages', () => {
    expect(chunkBySize([], 1_000)).toEqual([]);
  });
});

describe('chunkBySize per partition', () => {
  const byKey = (key: string) => Number(key.split('-')[0]);

  it('keeps a send in one chunk while no partition exceeds the limit, whatever the total', () => {
    const messages = Array.from({ length: 6 }, (_, i) => message(`${i}-k`, 1_000));
    expect(chunkBySize(messages, 1_500, byKey)).toEqual([messages]);
  });

  it('splits when one partition would exceed the limit, in order', () => {
    const messages = [message('0-a', 1_000), message('1-b', 1_000), message('0-c', 1_000), message('1-d', 1_000)];
    expect(chunkBySize(messages, 1_500, byKey)).toEqual([[messages[0], messages[1]], [messages[2], messages[3]]]);
  });
});

describe('keyPartitioner', () => {
  it('puts one key on one partition within the topic, as kafkajs does', () => {
    const partitionOf = keyPartitioner(6);
    const partitions = new Set(Array.from({ length: 200 }, (_, i) => partitionOf(`account-${i}`)));
    expect([...partitions].every((p) => p >= 0 && p < 6)).toBe(true);
    expect(partitions.size).toBe(6);
    const kafkajs = Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: 6 }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0] }));
    for (let i = 0; i < 200; i++) {
      const key = `account-${i}`;
      expect({ key, partition: partitionOf(key) }).toEqual({ key, partition: kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } }) });
    }
  });
});

describe('isUnreachable (a shared send that failed: fail its callers together, or send each again alone)', () => {
  const { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError, KafkaJSRequestTimeoutError } = jest.requireActual('kafkajs');
  it('given no connection or no answer, also once kafkajs gave up retrying it, then the cluster is unreachable', () => {
    expect(isUnreachable(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED'))).toBe(true);
    expect(isUnreachable(new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('refused'), { retryCount: 2, retryTime: 600 }))).toBe(true);
    expect(isUnreachable(new KafkaJSNumberOfRetriesExceeded(new KafkaJSRequestTimeoutError('Request Produce(key: 0, version: 7) timed out'), { retryCount: 2, retryTime: 600 }))).toBe(true);
  });

  it("given a partition's own refusal, retriable or not, then it is not: only that partition's callers fail", () => {
    const notEnoughReplicas = new KafkaJSProtocolError({ type: 'NOT_ENOUGH_REPLICAS', code: 19, retriable: true, message: 'Messages are rejected since there are fewer in-sync replicas than required' });
    expect(isUnreachable(new KafkaJSNumberOfRetriesExceeded(notEnoughReplicas, { retryCount: 2, retryTime: 600 }))).toBe(false);
    expect(isUnreachable(new KafkaJSProtocolError({ type: 'MESSAGE_TOO_LARGE', code: 10, retriable: false, message: 'The request included a message larger than the max message size the server will accept' }))).toBe(false);
    expect(isUnreachable(new Error('anything else'))).toBe(false);
  });
});

describe('KafkaProducer when partitions are added to a live topic', () => {
  // The client as far as the producer uses it: the topic's partition count (admin metadata) and the requests sent.
  const clientWithPartitions = (count: { now: number }) => {
    const requests: string[][] = [];
    const kafka = {
      admin: () => ({
        connect: async () => undefined,
        disconnect: async () => undefined,
        fetchTopicMetadata: async () => ({ topics: [{ name: 't', partitions: Array.from({ length: count.now }, (_, partitionId) => ({ partitionId })) }] }),
      }),
      producer: () => ({
        connect: async () => undefined,
        disconnect: async () => undefined,
        send: async ({ messages }: { messages: OutgoingMessage[] }) => {
          requests.push(messages.map((m) => m.key));
          return [];
        },
      }),
    } as unknown as Kafka;
    return { kafka, requests };
  };

  /** Two keys on different partitions of 2 and on one partition of 3. */
  const apartOnTwoTogetherOnThree = (): [string, string] => {
    const [two, three] = [keyPartitioner(2), keyPartitioner(3)];
    const keys = Array.from({ length: 500 }, (_, i) => `acct-${i}`);
    const a = keys.find((key) => keys.some((other) => two(key) !== two(other) && three(key) === three(other))) as string;
    return [a, keys.find((other) => two(a) !== two(other) && three(a) === three(other)) as string];
  };

  it('given a count known from an earlier send, when partitions were added since, then keys the new count puts together are split to fit one request', async () => {
    // Given two keys on different partitions of 2 and on one partition of 3, and a producer that knew the topic had 2
    const [a, b] = apartOnTwoTogetherOnThree();
    const count = { now: 2 };
    const { kafka, requests } = clientWithPartitions(count);
    const producer = new KafkaProducer(kafka, { maxSendBytes: 3_000, partitionCountTtlMs: 0 });
    await producer.send('t', [message(a, 10)]);

    // When a partition is added and two messages of 2,000 bytes are sent, one for each key
    count.now = 3;
    await producer.send('t', [message(a, 2_000), message(b, 2_000)]);

    // Then they go in two requests: together they would pass the 3,000 bytes one partition's request may carry
    expect(requests.slice(1)).toEqual([[a], [b]]);
  });

  it('takes the count it knows as known for 5 minutes by default, as kafkajs its metadata', async () => {
    const count = { now: 2 };
    const { kafka, requests } = clientWithPartitions(count);
    const producer = new KafkaProducer(kafka, { maxSendBytes: 3_000 });
    const [a, b] = apartOnTwoTogetherOnThree();
    await producer.send('t', [message(a, 10)]);
    count.now = 3;
    await producer.send('t', [message(a, 2_000), message(b, 2_000)]);
    expect(requests.slice(1)).toEqual([[a, b]]); // within the 5 minutes: the count of 2, one request
  });
});

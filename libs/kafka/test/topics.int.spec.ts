import { ConfigResourceTypes } from 'kafkajs';
import { testKafkaBrokers } from '@tally/testing';
import { KafkaProducer, createKafkaClient, ensureTopics, withAdmin } from '../src';
import { deleteKafkaResources, readMessages, uniqueSuffix } from './kafka.harness';

const kafka = createKafkaClient({ clientId: `topics-it-${uniqueSuffix()}`, brokers: testKafkaBrokers() });
const HOUR = 3_600_000;

/** What a producer whose clock runs `aheadMs` fast sends: kafkajs stamps each message with the local clock. */
async function produceFromFastClock(topic: string, aheadMs: number): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
  await producer.connect();
  try {
    await producer.send({ topic, messages: [{ key: 'k', value: 'from the future', timestamp: String(Date.now() + aheadMs) }] });
  } finally {
    await producer.disconnect();
  }
}

function timestampType(topic: string): Promise<string | undefined> {
  return withAdmin(kafka, async (admin) => {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['message.timestamp.type'] }],
    });
    return resources[0].configEntries.find((entry) => entry.configName === 'message.timestamp.type')?.configValue;
  });
}

describe('topics Tally creates', () => {
  const created = `t.${uniqueSuffix()}.clock`;
  const existing = `t.${uniqueSuffix()}.clock-existing`;

  afterAll(async () => {
    await deleteKafkaResources(kafka, [created, existing], []);
  });

  it('accept messages from a producer whose clock is hours fast, stamped with the broker time', async () => {
    await ensureTopics(kafka, [created], 2);
    const before = Date.now();
    await produceFromFastClock(created, 2 * HOUR);

    const [message] = await readMessages(kafka, created, 1);
    expect(message.value?.toString()).toBe('from the future');
    // Broker append time: the broker's clock, not the producer's 2 h ahead.
    expect(Number(message.timestamp)).toBeGreaterThanOrEqual(before - 60_000);
    expect(Number(message.timestamp)).toBeLessThan(before + HOUR);
  });

  it('switch a topic created earlier with producer time to broker append time, keeping its other settings', async () => {
    await withAdmin(kafka, (admin) =>
      admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic: existing, numPartitions: 1, configEntries: [{ name: 'message.timestamp.type', value: 'CreateTime' }, { name: 'retention.ms', value: '86400000' }] }],
      }),
    );
    await ensureTopics(kafka, [existing], 1);

    expect(await timestampType(existing)).toBe('LogAppendTime');
    const retention = await withAdmin(kafka, async (admin) => {
      const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: existing, configNames: ['retention.ms'] }] });
      return resources[0].configEntries[0]?.configValue;
    });
    expect(retention).toBe('86400000');
    await produceFromFastClock(existing, 2 * HOUR);
    expect(await readMessages(kafka, existing, 1)).toHaveLength(1);
  });
});

/**
 * A dead letter is a message Tally refused: usage that was never charged until an operator replays it. With the
 * broker's default retention (7 days) it was deleted a week after it was refused, replayed or not, and the usage
 * with it. Dead-letter topics keep their messages (retention.ms = -1), also one created earlier with a limit.
 */
describe('dead-letter topics Tally creates', () => {
  const created = `t.${uniqueSuffix()}.dlq.v1`;
  const existing = `t.${uniqueSuffix()}.old.dlq.v1`;
  const source = `t.${uniqueSuffix()}.source.v1`;

  afterAll(async () => {
    await deleteKafkaResources(kafka, [created, existing, source], []);
  });

  const retentionOf = (topic: string) =>
    withAdmin(kafka, async (admin) => {
      const { resources } = await admin.describeConfigs({ includeSynonyms: true, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }] });
      return resources[0].configEntries.find((entry) => entry.configName === 'retention.ms')?.configValue;
    });

  it('keep their messages for ever, and a source topic keeps the broker default', async () => {
    await ensureTopics(kafka, [created, source], 1);
    expect(await retentionOf(created)).toBe('-1');
    expect(await retentionOf(source)).toBe(String(7 * 24 * HOUR));
  });

  it('a dead-letter topic created earlier with a retention limit keeps its messages from now on', async () => {
    await withAdmin(kafka, (admin) =>
      admin.createTopics({ waitForLeaders: true, topics: [{ topic: existing, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '604800000' }] }] }),
    );
    await ensureTopics(kafka, [existing], 1);
    expect(await retentionOf(existing)).toBe('-1');
  });

  it("keeps an operator's own retention of a dead-letter topic when it is 90 days or more", async () => {
    const kept = `t.${uniqueSuffix()}.kept.dlq.v1`;
    const year = String(365 * 24 * HOUR);
    try {
      await withAdmin(kafka, (admin) => admin.createTopics({ waitForLeaders: true, topics: [{ topic: kept, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: year }] }] }));
      await ensureTopics(kafka, [kept], 1);
      expect(await retentionOf(kept)).toBe(year);
    } finally {
      await deleteKafkaResources(kafka, [kept], []);
    }
  });
});

/**
 * The broker here creates a topic on demand (as a development broker often does). Tally's own clients must not ask it
 * to: a topic deleted by mistake came back empty under a producer's next send, which was acknowledged into a log no
 * consumer's stored offset pointed at, and readiness said ready.
 */
describe("a topic Tally's producer sends to that does not exist", () => {
  const missing = `t.${uniqueSuffix()}.never-created`;

  afterAll(async () => {
    await deleteKafkaResources(kafka, [missing], []);
  });

  it('refuses the send and is not created', async () => {
    const producer = new KafkaProducer(createKafkaClient({ clientId: `no-create-${uniqueSuffix()}`, brokers: testKafkaBrokers(), retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 300 } }));
    try {
      await expect(producer.send(missing, [{ key: 'k', value: 'lost?' }])).rejects.toThrow();
    } finally {
      await producer.disconnect();
    }
    expect(await withAdmin(kafka, async (admin) => (await admin.listTopics()).includes(missing))).toBe(false);
  }, 60_000);
});

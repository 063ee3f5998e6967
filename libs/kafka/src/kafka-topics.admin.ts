import type { Admin, Kafka } from 'kafkajs';

/** Runs `fn` with a connected admin client and disconnects it afterwards, whatever happens. */
export async function withAdmin<T>(kafka: Kafka, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

export interface EnsureTopicsOptions {
  /** Broker default when omitted (1 on the local single-node broker). */
  replicationFactor?: number;
}

/**
 * Creates the topics that do not exist yet and waits until each partition has a leader, so a producer or
 * consumer started right after does not race the creation. Existing topics are left as they are (their
 * partition count is never changed here: that would move keys between partitions).
 */
export async function ensureTopics(kafka: Kafka, topics: string[], partitions: number, options: EnsureTopicsOptions = {}): Promise<void> {
  if (topics.length === 0) return;
  await withAdmin(kafka, async (admin) => {
    const existing = new Set(await admin.listTopics());
    const missing = [...new Set(topics)].filter((topic) => !existing.has(topic));
    if (missing.length === 0) return;
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: options.replicationFactor ?? -1 })),
      });
    } catch (error) {
      // Another process (or broker auto-creation) won the race: fine as long as the topic now exists.
      if ((error as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw error;
    }
  });
}

/** How many partitions a topic has, from the cluster's metadata. */
export function topicPartitionCount(kafka: Kafka, topic: string): Promise<number> {
  return withAdmin(kafka, async (admin) => (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions.length);
}

/**
 * For Terminus health indicators: resolves when the cluster answers a metadata request, throws after
 * `timeoutMs` otherwise. kafkajs keeps retrying the seed-broker connection in the background with the client's
 * retry policy after the timeout (admin-level retry options do not reach it); bounded (~1 min with the
 * defaults), but a dedicated probe client (`createKafkaClient({ …, retry: { retries: 0 } })`) avoids it.
 */
export async function kafkaHealth(kafka: Kafka, timeoutMs = 5_000): Promise<void> {
  const admin = kafka.admin();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await admin.connect();
        const cluster = await admin.describeCluster();
        if (cluster.brokers.length === 0) throw new Error('Kafka cluster reports no brokers');
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Kafka did not answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await admin.disconnect().catch(() => undefined);
  }
}

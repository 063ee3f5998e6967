/**
 * Child process of the redelivery test: consumes with the real BatchConsumer and SIGKILLs itself right after
 * the first PostgreSQL COMMIT, before Kafka hears about the offset — the crash window the offsets table covers.
 * Config arrives as one JSON argument (services read the environment only through their config class).
 */
import 'reflect-metadata';
import { Pool } from 'pg';
import { BatchConsumer } from '../src/batch.consumer';
import { createKafkaClient } from '../src/kafka-client.provider';
import { KafkaProducer } from '../src/kafka.producer';
import { insertApplied, parseUsage } from './kafka.harness';

interface ChildConfig {
  brokers: string[];
  databaseUrl: string;
  topic: string;
  groupId: string;
  schema: string;
  deadLetterTopic: string;
  maxMessagesPerTransaction: number;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2]) as ChildConfig;
  const kafka = createKafkaClient({ clientId: 'redelivery-child', brokers: config.brokers });
  const pool = new Pool({ connectionString: config.databaseUrl, max: 2 });
  const producer = new KafkaProducer(kafka);
  const consumer = new BatchConsumer({
    kafka,
    groupId: config.groupId,
    topics: [config.topic],
    pool,
    offsetsSchema: config.schema,
    deadLetterTopic: () => config.deadLetterTopic,
    producer,
    parse: parseUsage,
    handle: ({ topic, partition, messages, tx }) => insertApplied(tx, config.schema, topic, partition, messages),
    maxMessagesPerTransaction: config.maxMessagesPerTransaction,
    // The broker's minimum, so the killed member leaves the group quickly and the test stays short.
    sessionTimeoutMs: 6_000,
    rebalanceTimeoutMs: 10_000,
    hooks: {
      afterDbCommit: async ({ lastOffset }) => {
        process.stdout.write(`COMMITTED ${lastOffset}\n`);
        process.kill(process.pid, 'SIGKILL');
      },
    },
  });
  await consumer.start();
  process.stdout.write('STARTED\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

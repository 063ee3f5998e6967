import 'reflect-metadata';
/**
 * Creates the project's Kafka topics (idempotent). Called by `scripts/infra.sh up`; services run their own
 * database migrations at boot (TypeORM, never synchronize).
 */
import { ALL_TOPICS } from '@tally/contracts';
import { createKafkaClient, ensureTopics } from '@tally/kafka';

async function main() {
  const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const partitions = Number(process.env.KAFKA_PARTITIONS ?? '6');
  const kafka = createKafkaClient({ clientId: 'tally-provision', brokers });
  await ensureTopics(kafka, [...ALL_TOPICS], partitions);
  console.log(`[infra] topics ready (${partitions} partitions): ${ALL_TOPICS.join(', ')}`);
}

main().catch((error) => {
  console.error('[infra] could not create topics:', error);
  process.exit(1);
});

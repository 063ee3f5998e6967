import { Pool } from 'pg';
import { type ParsedMessage } from '@tally/contracts';
import { metricsRegistry, parsePrometheusText, samplesOf, sumOf } from '@tally/metrics';
import { BatchConsumer, KafkaProducer, createKafkaClient, ensureOffsetsTable, ensureTopics, quoteSchema, readStoredOffsets } from '../src';
import { createAppliedTable, deleteKafkaResources, insertApplied, parseUsage, uniqueSuffix, usageEnvelope, waitFor } from './kafka.harness';

/**
 * The BatchConsumer's metrics on the real broker and PostgreSQL, read the way Prometheus reads them (the process
 * registry in the text format): messages, batches, dead letters by reason, failures by error class, lag and
 * stalled per partition, and a stopped consumer's partitions leaving the scrape.
 */
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const suffix = uniqueSuffix();
const schema = `kafka_metrics_${suffix}`;
const topic = `it.metrics.${suffix}`;
const deadLetterTopic = `${topic}.dlq`;
const groupId = `it-metrics-${suffix}`;
const kafka = createKafkaClient({ clientId: `kafka-metrics-${suffix}`, brokers });
const pool = new Pool({ connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tally_test', max: 4 });
const producer = new KafkaProducer(kafka);
const scrape = async () => parsePrometheusText(await metricsRegistry.metrics());
const ours = { group: groupId, topic };

beforeAll(async () => {
  await ensureOffsetsTable(pool, schema);
  await createAppliedTable(pool, schema);
  await ensureTopics(kafka, [topic, deadLetterTopic], 1);
  await producer.connect();
});

afterAll(async () => {
  await producer.disconnect();
  await deleteKafkaResources(kafka, [topic, deadLetterTopic], [groupId]);
  await pool.query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
  await pool.end();
});

it('counts applied messages, dead letters by reason and failures by error class; lag 0 once caught up; gone after stop', async () => {
  let conflicts = 2;
  const consumer = new BatchConsumer<ParsedMessage>({
    kafka,
    groupId,
    topics: [topic],
    pool,
    offsetsSchema: schema,
    deadLetterTopic: () => deadLetterTopic,
    producer,
    parse: parseUsage,
    handle: async ({ topic: t, partition, messages, tx, deadLetter }) => {
      // Two transient failures first (a deadlock, SQLSTATE 40P01), then the batch goes through.
      if (conflicts-- > 0) throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
      const accepted = messages.filter((m) => (m.value.envelope.id === 'closed-1' ? (deadLetter(m, 'ACCOUNT_CLOSED'), false) : true));
      await insertApplied(tx, schema, t, partition, accepted);
    },
    retry: { retries: 5, minTimeoutMs: 50, maxTimeoutMs: 200 },
    sessionTimeoutMs: 6_000,
    rebalanceTimeoutMs: 10_000,
  });
  await producer.send(topic, [
    ...Array.from({ length: 5 }, (_, i) => ({ key: 'acct-1', value: JSON.stringify(usageEnvelope(`good-${i}`, 'acct-1')) })),
    { key: 'acct-1', value: 'not json {' },
    { key: 'acct-1', value: JSON.stringify(usageEnvelope('closed-1', 'acct-1')) },
  ]);
  await consumer.start();
  try {
    await waitFor(async () => (await readStoredOffsets(pool, schema, groupId, topic)).get(0) === 6n, 30_000, 'offset 6');
    const samples = await scrape();
    expect(sumOf(samples, 'tally_kafka_consumer_messages_total', { ...ours, partition: '0' })).toBe(5);
    expect(sumOf(samples, 'tally_kafka_consumer_batches_total', ours)).toBeGreaterThanOrEqual(1);
    expect(sumOf(samples, 'tally_kafka_consumer_dead_letters_total', { ...ours, reason: 'INVALID_JSON' })).toBe(1);
    expect(sumOf(samples, 'tally_kafka_consumer_dead_letters_total', { ...ours, reason: 'ACCOUNT_CLOSED' })).toBe(1);
    expect(sumOf(samples, 'tally_kafka_consumer_failures_total', { ...ours, partition: '0', reason: 'conflict' })).toBe(2);
    expect(samplesOf(samples, 'tally_kafka_consumer_lag_messages', ours)).toEqual([{ name: 'tally_kafka_consumer_lag_messages', labels: { ...ours, partition: '0' }, value: 0 }]);
    expect(sumOf(samples, 'tally_kafka_consumer_stalled', ours)).toBe(0);
    const [age] = samplesOf(samples, 'tally_kafka_consumer_last_message_age_seconds', ours);
    expect(age.value).toBeGreaterThanOrEqual(0);
    expect(age.value).toBeLessThan(120);
    expect(sumOf(samples, 'tally_kafka_consumer_batch_duration_seconds_count', ours)).toBeGreaterThanOrEqual(1);
    // The messages were produced before the consumer joined its group and the first two attempts were rolled back and
    // backed off (≥ 50 ms each): the chunk that committed waited at least that long, from its oldest message's timestamp.
    const waits = sumOf(samples, 'tally_kafka_consumer_wait_seconds_count', ours);
    expect(waits).toBeGreaterThanOrEqual(1);
    expect(sumOf(samples, 'tally_kafka_consumer_wait_seconds_sum', ours)).toBeGreaterThanOrEqual(0.1);
    expect(sumOf(samples, 'tally_kafka_consumer_wait_seconds_sum', ours) / waits).toBeLessThan(120);
  } finally {
    await consumer.stop();
  }
  // A stopped consumer's partitions leave the scrape-time gauges (another member owns them now); counters stay.
  const after = await scrape();
  expect(samplesOf(after, 'tally_kafka_consumer_lag_messages', ours)).toEqual([]);
  expect(sumOf(after, 'tally_kafka_consumer_messages_total', ours)).toBe(5);
}, 60_000);

it('a partition stuck on a batch shows its lag growing as producers go on (high watermarks asked at scrape time)', async () => {
  const stuckTopic = `${topic}.stuck`;
  const stuckGroup = `${groupId}-stuck`;
  await ensureTopics(kafka, [stuckTopic], 1);
  const consumer = new BatchConsumer<ParsedMessage>({
    kafka,
    groupId: stuckGroup,
    topics: [stuckTopic],
    pool,
    offsetsSchema: schema,
    deadLetterTopic: () => undefined,
    producer,
    parse: parseUsage,
    handle: async () => {
      throw Object.assign(new Error('a bug in production'), { code: 'P0001' });
    },
    // Retries inside one batch for the whole test: no consumer restart (and so no new fetch) refreshes the watermark.
    retry: { retries: 1_000, minTimeoutMs: 100, maxTimeoutMs: 200 },
    stall: { afterAttempts: 3 },
    sessionTimeoutMs: 6_000,
    rebalanceTimeoutMs: 10_000,
  });
  const at = { group: stuckGroup, topic: stuckTopic, partition: '0' };
  await producer.send(stuckTopic, [{ key: 'acct-1', value: JSON.stringify(usageEnvelope('stuck-0', 'acct-1')) }]);
  await consumer.start();
  try {
    await waitFor(async () => {
      const samples = await scrape();
      return sumOf(samples, 'tally_kafka_consumer_stalled', at) === 1 && sumOf(samples, 'tally_kafka_consumer_lag_messages', at) === 1;
    }, 30_000, 'stalled with lag 1');
    await producer.send(stuckTopic, [1, 2, 3].map((i) => ({ key: 'acct-1', value: JSON.stringify(usageEnvelope(`stuck-${i}`, 'acct-1')) })));
    await waitFor(async () => sumOf(await scrape(), 'tally_kafka_consumer_lag_messages', at) === 4, 40_000, 'lag 4');
    expect(sumOf(await scrape(), 'tally_kafka_consumer_failures_total', { ...at, reason: 'database' })).toBeGreaterThanOrEqual(3);
  } finally {
    await consumer.stop();
    await deleteKafkaResources(kafka, [stuckTopic], [stuckGroup]);
  }
}, 90_000);

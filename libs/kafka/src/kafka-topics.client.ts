import { ConfigResourceTypes, ConfigSource, type Admin, type Kafka } from 'kafkajs';
import { NotReadyError } from '@tally/shared';
import { DEAD_LETTER_SUFFIX } from './dead-letter.publisher';

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
 * Every topic Tally creates stamps messages with the broker's clock (`LogAppendTime`), so a producer whose clock
 * runs fast cannot be refused: with producer time (`CreateTime`) Kafka 4 rejects anything stamped more than
 * `message.timestamp.after.max.ms` (1 h) ahead, which would stall an outbox or relay on that producer for good.
 */
export const TOPIC_CONFIG: Readonly<Record<string, string>> = { 'message.timestamp.type': 'LogAppendTime' };

/**
 * A dead letter is its message plus headers (reason, details up to 8 KiB, where it came from): a message as large as
 * its topic takes (the broker's `message.max.bytes`, 1,048,588 by default) would not fit a topic of the same limit,
 * its dead-lettering would fail on every retry and stop the partition. Dead-letter topics take 64 KiB more. A source
 * topic given a larger `max.message.bytes` needs its dead-letter topic raised to match.
 */
export const DEAD_LETTER_MAX_MESSAGE_BYTES = String(1_048_588 + 64 * 1024);

/**
 * A dead letter is a message Tally refused (usage never charged until an operator replays it): its topic keeps it
 * until then, not the broker's default retention (7 days), after which it was gone, replayed or not. Few messages
 * ever land there; an operator truncates a topic once its letters are dealt with (README, dead letters).
 */
export const DEAD_LETTER_RETENTION_MS = '-1';
/** A dead-letter topic an operator gave a retention of at least this (90 days) keeps it: their choice, long enough. */
export const DEAD_LETTER_MIN_RETENTION_MS = 90 * 24 * 3_600_000;

/** The settings Tally gives a topic: TOPIC_CONFIG, and a dead-letter topic's larger message limit and retention. */
export function topicConfigOf(topic: string): Readonly<Record<string, string>> {
  return topic.endsWith(DEAD_LETTER_SUFFIX)
    ? { ...TOPIC_CONFIG, 'max.message.bytes': DEAD_LETTER_MAX_MESSAGE_BYTES, 'retention.ms': DEAD_LETTER_RETENTION_MS }
    : TOPIC_CONFIG;
}

/**
 * Creates the topics that do not exist yet and waits until each partition has a leader, so a producer or
 * consumer started right after does not race the creation. Existing topics keep their partition count (changing
 * it would move keys between partitions) and their other settings, but get TOPIC_CONFIG where they differ.
 */
export async function ensureTopics(kafka: Kafka, topics: string[], partitions: number, options: EnsureTopicsOptions = {}): Promise<void> {
  if (topics.length === 0) return;
  await withAdmin(kafka, async (admin) => {
    const wanted = [...new Set(topics)];
    const existing = new Set(await admin.listTopics());
    const missing = wanted.filter((topic) => !existing.has(topic));
    if (missing.length > 0) {
      try {
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({
            topic,
            numPartitions: partitions,
            replicationFactor: options.replicationFactor ?? -1,
            configEntries: Object.entries(topicConfigOf(topic)).map(([name, value]) => ({ name, value })),
          })),
        });
      } catch (error) {
        // Another process (or broker auto-creation) won the race: fine as long as the topic now exists.
        if ((error as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw error;
      }
    }
    await applyTopicConfig(admin, wanted);
  });
}

/**
 * Brings TOPIC_CONFIG onto topics that lack it (created before, by another tool, or auto-created). kafkajs only
 * has the non-incremental AlterConfigs, which resets what it does not name: so the topic's own settings are read
 * first and written back with ours.
 */
async function applyTopicConfig(admin: Admin, topics: string[]): Promise<void> {
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
  });
  // A setting is missing when absent or different; a message limit only when lower than ours (an operator's higher one
  // stays); a dead-letter retention only when finite and shorter than DEAD_LETTER_MIN_RETENTION_MS (an operator's
  // longer one stays).
  const current = (resource: (typeof resources)[number], name: string) => resource.configEntries.find((entry) => entry.configName === name)?.configValue;
  const lacking = ([name, value]: [string, string], resource: (typeof resources)[number]) => {
    const now = current(resource, name);
    if (name === 'max.message.bytes') return Number(now ?? 0) < Number(value);
    if (name === 'retention.ms') return now !== '-1' && Number(now ?? 0) < DEAD_LETTER_MIN_RETENTION_MS;
    return now !== value;
  };
  const stale = resources.filter((resource) => Object.entries(topicConfigOf(resource.resourceName)).some((entry) => lacking(entry, resource)));
  if (stale.length === 0) return;
  await admin.alterConfigs({
    validateOnly: false,
    resources: stale.map((resource) => {
      const ours = Object.fromEntries(Object.entries(topicConfigOf(resource.resourceName)).filter((entry) => lacking(entry, resource)));
      const own = resource.configEntries.filter((entry) => entry.configSource === ConfigSource.TOPIC_CONFIG && !(entry.configName in ours));
      return {
        type: ConfigResourceTypes.TOPIC,
        name: resource.resourceName,
        configEntries: [
          ...own.map((entry) => ({ name: entry.configName, value: entry.configValue })),
          ...Object.entries(ours).map(([name, value]) => ({ name, value })),
        ],
      };
    }),
  });
}

/**
 * Which of `topics` the cluster does not have, in the order given, each once; and how to say so ("topic a does not
 * exist", "topics a, b do not exist"). Readiness and the CLI's replay ask it before they count on a topic.
 */
export async function missingTopics(admin: Admin, topics: Iterable<string>): Promise<{ missing: string[]; saying: string }> {
  const wanted = [...new Set(topics)];
  const existing = wanted.length === 0 ? new Set<string>() : new Set(await admin.listTopics());
  const missing = wanted.filter((topic) => !existing.has(topic));
  return { missing, saying: missing.length === 1 ? `topic ${missing[0]} does not exist` : `topics ${missing.join(', ')} do not exist` };
}

/** How many partitions a topic has, from the cluster's metadata. */
export function topicPartitionCount(kafka: Kafka, topic: string): Promise<number> {
  return withAdmin(kafka, async (admin) => (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions.length);
}

/**
 * For Terminus health indicators: resolves when the cluster answers a metadata request and has each of `topics` (the
 * ones the caller consumes or produces to), throws after `timeoutMs` otherwise. A topic deleted under a running
 * consumer fails no fetch kafkajs reports (it keeps asking for it): only this shows it, as a NotReadyError naming it.
 * kafkajs keeps retrying the seed-broker connection in the background with the client's retry policy after the
 * timeout (admin-level retry options do not reach it); bounded (~1 min with the defaults), but a dedicated probe
 * client (`createKafkaClient({ …, retry: { retries: 0 } })`) avoids it.
 */
export async function kafkaHealth(kafka: Kafka, options: { topics?: readonly string[]; timeoutMs?: number } = {}): Promise<void> {
  const { topics = [], timeoutMs = 5_000 } = options;
  const admin = kafka.admin();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await admin.connect();
        const cluster = await admin.describeCluster();
        if (cluster.brokers.length === 0) throw new Error('Kafka cluster reports no brokers');
        const { missing, saying } = await missingTopics(admin, topics);
        if (missing.length > 0) throw new NotReadyError(`Kafka ${saying} (deleted? scripts/provision.script.ts creates them)`, { missingTopics: missing });
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

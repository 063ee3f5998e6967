import { setTimeout as sleep } from 'node:timers/promises';
import { ContractViolation } from '@tally/contracts';
import { context, SpanKind } from '@opentelemetry/api';
import { NotReadyError, StallDetector, carrierFromHeaders, unavailableDependency, contextOf, continueTrace, endSpan, tracingEnabled, type ConsumedTrace, type FailureStreak, type StallThresholds } from '@tally/shared';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Pool, PoolClient } from 'pg';
import { beginAndLockStoredOffsets, readResumeOffsets, storeOffsetsAndCommit, type PartitionRef } from './consumer-offsets.repository';
import { ConsumerCounters, consumerMetricSources, type ConsumerMetricsSource, type PartitionMetrics } from './batch-consumer.metrics';
import { REPLAY_FOR_GROUP_HEADER, detailsHeader, headersToStrings, toDeadLetterMessage, type DeadLetter } from './dead-letter.publisher';
import { silentKafkaLogger, type KafkaLogger } from './kafka.logger';
import type { KafkaProducer } from './kafka.producer';
import { kafkaHealth, withAdmin } from './kafka-topics.client';
import { DEFAULT_RETRY_POLICY, backoffDelayMs, type RetryPolicy } from './retry.schedule';

export interface ConsumedMessage<T> {
  offset: string;
  key: string | null;
  value: T;
  headers: Record<string, string>;
  timestamp: string;
}

export interface HandlerBatch<T> {
  topic: string;
  partition: number;
  /** Parsed, not yet applied, in offset order; never empty. */
  messages: ConsumedMessage<T>[];
  /**
   * Inside BEGIN; the consumer commits it together with the partition's offset. Do not COMMIT/ROLLBACK it. It may be
   * shared with other partitions' batches of the topic (handled one after the other, see applyTogether) and rolled
   * back for their sake: keep nothing decided in it in memory before `afterCommit`.
   */
  tx: PoolClient;
  /**
   * Marks a message the handler can never apply (e.g. a semantic rule): it goes to the dead-letter topic and
   * counts as consumed. Whatever the handler wrote for it in `tx` is committed, so write nothing for it.
   */
  deadLetter: (message: ConsumedMessage<T>, reason: string, details?: unknown) => void;
  /**
   * Runs `effect` once this transaction has committed (e.g. caching state decided in it); never for an attempt
   * that rolled back. A throw is logged, not retried: the batch is already committed.
   */
  afterCommit: (effect: () => void | Promise<void>) => void;
}

export interface BatchConsumerHooks {
  /** Test seam: runs after each PostgreSQL COMMIT, before the offset is resolved in Kafka. */
  afterDbCommit?: (committed: { topic: string; partition: number; lastOffset: string }) => Promise<void>;
}

export interface BatchConsumerOptions<T> {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  pool: Pool;
  /** PostgreSQL schema holding `kafka_consumer_offsets` (see ensureOffsetsTable / createKafkaOffsetsMigration). */
  offsetsSchema: string;
  /** Where poison messages of `topic` go; undefined = log them and move on (the partition never blocks). */
  deadLetterTopic: (topic: string) => string | undefined;
  producer: KafkaProducer;
  /** Pure; a ContractViolation (or any other throw) dead-letters the message. */
  parse: (topic: string, message: KafkaMessage) => T;
  /** Applies the messages inside `tx`. Throwing a ContractViolation blames the batch's content (see below); anything else is transient. */
  handle: (batch: HandlerBatch<T>) => Promise<void>;
  retry?: Partial<RetryPolicy>;
  logger?: KafkaLogger;
  /** Bounds a transaction's size (lock time, memory): a fetched batch is applied in chunks of this many. */
  maxMessagesPerTransaction?: number;
  /**
   * Chunks of several partitions share a transaction only while together they hold at most this many messages
   * (DEFAULT_GROUP_MAX_MESSAGES; see applyTogether); 0 applies every chunk in a transaction of its own.
   */
  groupMaxMessages?: number;
  partitionsConsumedConcurrently?: number;
  /** A new group reads from the earliest offset (default), so nothing produced before the first deploy is missed. */
  fromBeginning?: boolean;
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  maxWaitTimeMs?: number;
  hooks?: BatchConsumerHooks;
  /**
   * How often topics of `topics` past the first that the cluster lacks are looked for again (default 60 s). The first
   * topic is the consumer's own and must exist; the others (a product's usage topic) are left out of the subscription
   * while missing, so one not created yet does not stop the rest, and subscribed to once they appear.
   */
  missingTopicsRecheckMs?: number;
  /** When a partition that keeps failing on the same batch counts as stalled (readiness); see DEFAULT_STALL. */
  stall?: Partial<StallThresholds>;
  /**
   * A transaction under way for this long makes the consumer not ready (DEFAULT_IN_FLIGHT_MS): PostgreSQL not
   * answering fails nothing while no query timeout is set. Longer than a statement's timeout and its ROLLBACK's.
   */
  inFlightAfterMs?: number;
  /** After this many failed attempts, a batch of several messages is applied one message per transaction, to name the one that fails. */
  isolateAfterFailures?: number;
  /**
   * Pass over a replayed dead letter another group failed (REPLAY_FOR_GROUP_HEADER names it): this group applied it
   * the first time. Only where every writer of the topics is trusted (ledger.events.v1: the ledger's relay and the
   * operator's replays): on a topic a product writes, the header would let it have its own usage skipped, uncharged.
   * Off by default: the header is then ignored and the message applied as any other.
   */
  passOverOtherGroupsReplays?: boolean;
}

/**
 * A transient failure (a deadlock, a PostgreSQL blip) clears within a retry or two; the same batch failing five
 * times (about 2-3 s of backoff with the default retry policy) or for 30 s is not transient any more.
 */
export const DEFAULT_STALL: StallThresholds = { afterAttempts: 5, afterMs: 30_000 };

/** See BatchConsumerOptions.inFlightAfterMs: two PG_QUERY_TIMEOUT_MS (a statement and its ROLLBACK) and a minute more. */
export const DEFAULT_IN_FLIGHT_MS = 180_000;

/**
 * Sharing a transaction saves each partition after the first its fixed cost (two round trips and a commit, 5-10 ms
 * under load) but applies the partitions one after the other on one connection, where separate transactions overlap
 * one's CPU with another's waits: it pays for small chunks only (session 13: at 100,000 cold accounts, groups of
 * 150-290 messages made the usage consumer serial and doubled the latency; at 1,000 warm accounts, groups of 50-140
 * halved it).
 */
export const DEFAULT_GROUP_MAX_MESSAGES = 100;

/** How often Kafka's committed offsets catch up with PostgreSQL's (see BatchConsumer.commitKafkaOffsets). */
const KAFKA_COMMIT_INTERVAL_MS = 5_000;

/** A partition's fetch position against PostgreSQL's: checked, or sought back to `soughtTo` (from a stored offset, or to the log's start). */
type ResumeCheck = 'checked' | { soughtTo: bigint; stored: boolean };

type TopicPartitionOffset = { topic: string; partition: number; offset: string };

/** kafkajs's by-topic shape of offsets to commit. */
function topicsOf(offsets: TopicPartitionOffset[]): { topic: string; partitions: { partition: number; offset: string }[] }[] {
  const byTopic = new Map<string, { partition: number; offset: string }[]>();
  for (const { topic, partition, offset } of offsets) byTopic.set(topic, [...(byTopic.get(topic) ?? []), { partition, offset }]);
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
}

/** How often a scrape may ask the broker for the partitions' high watermarks (tally_kafka_consumer_lag_messages). */
const WATERMARK_REFRESH_MS = 10_000;

export interface BatchConsumerStats {
  /** Messages handed to `handle` and committed (dead-lettered by the handler excluded). */
  applied: number;
  /** Redelivered messages at or below the stored offset, dropped without effect. */
  skippedRedeliveries: number;
  /** Replayed dead letters of another group (REPLAY_FOR_GROUP_HEADER), passed over: this group applied them the first time. */
  skippedForOtherGroups: number;
  deadLettered: number;
  /** Transient failures that were retried. */
  retries: number;
  /** PostgreSQL transactions committed; one may hold the chunks of several partitions (see applyTogether). */
  transactions: number;
  /** Transactions over several partitions that failed and were applied again one partition per transaction. */
  groupsSplit: number;
  /** Times this member joined its group: the first join, then one per rebalance it took part in. */
  groupJoins: number;
}

/** Thrown out of eachBatch when a batch kept failing; kafkajs then restarts the consumer (`retriable`). */
export class BatchRetriesExhaustedError extends Error {
  readonly retriable = true;
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly firstOffset: string,
    override readonly cause: unknown,
  ) {
    super(`batch ${topic}[${partition}]@${firstOffset} still failing after retries: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'BatchRetriesExhaustedError';
  }
}

/**
 * PostgreSQL's stored offset of a partition is behind the last one this member committed there: the database lost
 * commits (failed over to a replica that was behind, restored). The chunk is abandoned and the partition sought back.
 */
class StoredOffsetWentBack extends Error {
  constructor(
    readonly ref: PartitionRef,
    readonly stored: bigint,
    readonly committedHere: bigint,
  ) {
    super(`${ref.topic}[${ref.partition}]: PostgreSQL's stored offset ${stored} is behind ${committedHere}, committed by this consumer`);
  }
}

/**
 * The partition's log ends at or before the offset PostgreSQL says was applied there, on this very cluster: the topic
 * was deleted and created again, or the broker lost its storage and kept its cluster id. Its messages are not the ones
 * applied; skipping them as redeliveries would drop them in silence. The partition stops (readiness names it) until an
 * operator has looked and moved the stored offset (`npm run tally -- consumers set-offset`). Seen when a whole chunk
 * would be skipped; a recreated log already longer than the stored offset is not told from the old one.
 */
class StoredOffsetBeyondLog extends Error {
  constructor(ref: PartitionRef, stored: bigint, logEnd: bigint) {
    super(
      `${ref.topic}[${ref.partition}]: PostgreSQL says offset ${stored} was applied, but the log ends before it (next offset ${logEnd}): ` +
        'the topic was recreated or the broker lost its log. Nothing is skipped; check, then move the stored offset (tally consumers set-offset)',
    );
  }
}

/** The handler blamed the content: find the message (one at a time if need be) and dead-letter it. */
class HandlerRejected extends Error {
  constructor(
    readonly violation: ContractViolation,
    readonly offsets: string[],
  ) {
    super(violation.message);
  }
}

/** Why a message is dead-lettered; `sent` once its dead letter is acknowledged (the message is then skipped). */
type Verdict = { reason: string; details?: unknown; sent?: true };

/** A chunk of one partition's fetched batch, to apply in a transaction (alone or with other partitions' chunks). */
interface ChunkPart {
  ref: PartitionRef;
  chunk: KafkaMessage[];
  payload: EachBatchPayload;
  /**
   * Messages already judged poison (while isolating a rejected message, or by a pass that then rolled back to send
   * their dead letters): dead-lettered without parsing, or skipped once their dead letter is sent.
   */
  verdicts: Map<string, Verdict>;
}

/**
 * What one partition's chunk left in its transaction: the offset to store, what was applied, the dead letters still
 * to send and how many messages were skipped because theirs is sent.
 */
interface PartOutcome {
  part: ChunkPart;
  lastOffset: string;
  applied: number;
  deadLetters: DeadLetter[];
  deadLettered: number;
}

/** A chunk waiting to be grouped, and its caller's answer: applied (true) or abandoned (false). */
interface Gathered {
  part: ChunkPart;
  resolve: (applied: boolean) => void;
  reject: (error: unknown) => void;
}

/**
 * The gathered chunks in groups to apply together: one topic per group (a topic's partitions hold disjoint keys,
 * while one account may be on several topics), one chunk per partition, at most `maxMessages` messages unless a
 * chunk alone has more.
 */
export function groupsOf<G extends { part: { ref: PartitionRef; chunk: unknown[] } }>(gathered: readonly G[], maxMessages: number): G[][] {
  const groups: G[][] = [];
  const open = new Map<string, { group: G[]; messages: number; partitions: Set<number> }>();
  for (const item of gathered) {
    const { ref, chunk } = item.part;
    const current = open.get(ref.topic);
    if (current && current.messages + chunk.length <= maxMessages && !current.partitions.has(ref.partition)) {
      current.group.push(item);
      current.messages += chunk.length;
      current.partitions.add(ref.partition);
      continue;
    }
    const group = [item];
    groups.push(group);
    open.set(ref.topic, { group, messages: chunk.length, partitions: new Set([ref.partition]) });
  }
  return groups;
}

function verdictOf(error: unknown): Verdict {
  if (error instanceof ContractViolation) return { reason: error.code, details: error.issues };
  // A parser that throws something else is deterministic too: retrying would block the partition forever.
  return { reason: 'UNPARSEABLE', details: [{ field: '(message)', reason: error instanceof Error ? error.message : String(error) }] };
}

/**
 * The hot-path consumer: exactly-once effect over Kafka's at-least-once delivery.
 *
 * Per chunk of a fetched batch, in ONE PostgreSQL transaction: lock the partition's stored offset, drop
 * redelivered messages (offset <= stored), parse, `handle` the valid ones in the same transaction, store the last
 * offset, COMMIT (a chunk with messages to dead-letter is rolled back, its dead letters sent, and run again without
 * them: see applyInTransaction). Only then is the offset resolved in Kafka, whose committed
 * offset is merely where fetching resumes: losing it costs a re-read, never a double effect.
 *
 * Transient failures roll back and retry the same chunk with backoff; it is never skipped. Poison messages
 * are dead-lettered, never retried, so a partition never blocks on them.
 */
export class BatchConsumer<T> implements ConsumerMetricsSource {
  /** kafkajs's consumer; a new one when the subscription changes (kafkajs keeps every topic ever subscribed). */
  private consumer: Consumer;
  /** Extra topics (past the first of `topics`) the cluster did not have at the last start or check. */
  private missing: readonly string[] = [];
  private missingTimer?: NodeJS.Timeout;
  /** The resubscription under way (subscribeToAppeared): stop() waits for it, so it never starts a consumer after a stop. */
  private resubscribing?: Promise<void>;
  /** Stopped by a resubscription whose start has not succeeded yet: every tick starts it again, topics appeared or not. */
  private down: Error | undefined;
  /** stop() was asked for (the app is closing): nothing starts the consumer again until start(). */
  private stopping = false;
  private readonly retryPolicy: RetryPolicy;
  private readonly logger: KafkaLogger;
  private readonly maxPerTransaction: number;
  private readonly partitionsAtOnce: number;
  private readonly groupMaxMessages: number;
  private readonly heartbeatErrors = new WeakSet<object>();
  private readonly counters: BatchConsumerStats = { applied: 0, skippedRedeliveries: 0, skippedForOtherGroups: 0, deadLettered: 0, retries: 0, transactions: 0, groupsSplit: 0, groupJoins: 0 };
  /** Per partition (`topic:partition`): the offset last committed to Kafka by this member (see commitKafkaOffsets). */
  private readonly kafkaCommitted = new Map<string, bigint>();
  private kafkaCommitTimer?: NodeJS.Timeout;
  /** Heartbeats beside a long transaction (keepMembership). */
  private membershipTimer?: NodeJS.Timeout;
  private committingToKafka?: Promise<void>;
  /** Chunks that arrived in this macrotask, to apply together (see applyTogether). */
  private gathering: Gathered[] = [];
  private crashed: Error | undefined;
  /** Read at start and after each group join (clusterIdNow): stored offsets of another cluster are not trusted (see beginAndLockStoredOffsets). */
  private clusterId: string | undefined;
  /** The cluster's id as read since the last group join (see clusterIdNow). */
  private clusterIdRead?: Promise<string | undefined>;
  /** Per partition (`topic:partition`): the batch that keeps failing, for readiness. */
  private readonly stalls: StallDetector;
  private readonly isolateAfter: number;
  /** How often the group's coordinator hears from this member, a transaction under way included (see keepMembership). */
  private readonly heartbeatIntervalMs: number;
  /** Per partition (`topic:partition`): where it stands, for the scrape-time gauges (lag, last message age). */
  private readonly progress = new Map<string, { topic: string; partition: number; highWatermark: bigint; nextOffset?: bigint; lastMessageAt?: number }>();
  /** Per partition (`topic:partition`) of the current assignment: its fetch position checked against PostgreSQL's (see fetchingFromStored). */
  private readonly resumeChecks = new Map<string, ResumeCheck>();
  /** Per partition (`topic:partition`): the last offset this member committed to PostgreSQL (see StoredOffsetWentBack). */
  private readonly committedHere = new Map<string, bigint>();
  /** Transactions under way, by when they began (see checkFlowing). */
  private readonly inFlight = new Set<{ since: number; parts: ChunkPart[] }>();
  /** The stored offsets, read once per assignment by the first batches (one query, so batches fetched together stay together). */
  private resumeOffsets?: Promise<Map<string, bigint>>;
  private readonly metrics: ConsumerCounters;
  /** The high watermarks refreshed from the broker at scrape time (see refreshHighWatermarks). */
  private watermarksRefreshedAt = 0;
  private refreshingWatermarks?: Promise<void>;
  readonly groupId: string;

  constructor(private readonly options: BatchConsumerOptions<T>) {
    this.groupId = options.groupId;
    this.metrics = new ConsumerCounters(options.groupId);
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.logger = options.logger ?? silentKafkaLogger;
    this.maxPerTransaction = options.maxMessagesPerTransaction ?? 500;
    this.partitionsAtOnce = options.partitionsConsumedConcurrently ?? 1;
    // One partition at a time, nothing can arrive with a chunk to share its transaction: grouping is off.
    this.groupMaxMessages = this.partitionsAtOnce === 1 ? 0 : (options.groupMaxMessages ?? DEFAULT_GROUP_MAX_MESSAGES);
    this.stalls = new StallDetector({ ...DEFAULT_STALL, ...options.stall });
    this.isolateAfter = options.isolateAfterFailures ?? 3;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 3_000;
    this.consumer = this.createConsumer();
  }

  private createConsumer(): Consumer {
    const { options } = this;
    const consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      rebalanceTimeout: options.rebalanceTimeoutMs ?? 60_000,
      heartbeatInterval: this.heartbeatIntervalMs,
      maxWaitTimeInMs: options.maxWaitTimeMs ?? 1_000,
      // A broker that creates topics on demand would make a deleted topic anew, empty, on the next metadata request:
      // readiness would say ready over a log no stored offset points into. Topics are provisioned, never implied.
      allowAutoTopicCreation: false,
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      this.logger.error({ groupId: options.groupId, error: payload.error.message, restart: payload.restart }, 'kafka consumer crashed');
      this.crashed = payload.restart ? undefined : payload.error;
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.counters.groupJoins += 1;
      this.metrics.joined();
      this.crashed = undefined;
      // The cluster may be another one now (a broker re-provisioned at the same address): asked again (clusterIdNow).
      this.clusterIdRead = undefined;
      // Every partition of the new assignment fetches from Kafka's committed offset again: check each once more.
      this.resumeChecks.clear();
      this.resumeOffsets = undefined;
      // A partition that went to another member is no longer ours to report.
      const assigned = new Set(Object.entries(payload.memberAssignment).flatMap(([topic, partitions]) => partitions.map((p) => `${topic}:${p}`)));
      this.stalls.retain((key) => assigned.has(key));
      for (const key of [...this.progress.keys()]) if (!assigned.has(key)) this.progress.delete(key);
      for (const key of [...this.kafkaCommitted.keys()]) if (!assigned.has(key)) this.kafkaCommitted.delete(key);
      for (const key of [...this.committedHere.keys()]) if (!assigned.has(key)) this.committedHere.delete(key);
    });
    return consumer;
  }

  /**
   * Connects, subscribes and joins the group; resolves once joined (after a crash that waits for the dead
   * member's session to time out), so callers that must not wait (an HTTP listener) start it in the background.
   * A failed start leaves nothing connected, so it can simply be called again.
   */
  /** The start in flight, so stop() can wait for it instead of racing it (see stop). */
  private starting?: Promise<void>;

  start(): Promise<void> {
    if (this.resubscribing) throw new Error('BatchConsumer.start while it resubscribes: stop() it first');
    this.stopping = false;
    this.starting = this.connectAndRun();
    return this.starting;
  }

  private async connectAndRun(): Promise<void> {
    try {
      this.clusterId = await this.readClusterId();
      this.clusterIdRead = Promise.resolve(this.clusterId);
      await this.options.producer.connect();
      const topics = await this.presentTopics();
      await this.consumer.connect();
      await this.consumer.subscribe({ topics, fromBeginning: this.options.fromBeginning ?? true });
      await this.consumer.run({
        // Kafka's committed offsets are only where fetching resumes: committed every KAFKA_COMMIT_INTERVAL_MS and
        // when stopping (commitKafkaOffsets), not after every batch.
        autoCommit: false,
        // We resolve offsets ourselves, only after the database commit.
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.partitionsAtOnce,
        eachBatch: (payload) => this.onBatch(payload),
      });
    } catch (error) {
      await this.consumer.disconnect().catch(() => undefined);
      throw error;
    }
    consumerMetricSources.add(this);
    this.membershipTimer = setInterval(() => this.keepMembership(), this.heartbeatIntervalMs);
    this.membershipTimer.unref();
    this.kafkaCommitTimer = setInterval(() => void this.commitKafkaOffsets((offsets) => this.consumer.commitOffsets(offsets)), KAFKA_COMMIT_INTERVAL_MS);
    this.kafkaCommitTimer.unref();
    clearInterval(this.missingTimer); // one a failed resubscription left
    this.missingTimer = undefined;
    if (this.missing.length > 0) this.checkMissingTopics();
    this.logger.info({ groupId: this.options.groupId, topics: this.options.topics, missingTopics: this.missing }, 'batch consumer started');
  }

  /**
   * The topics to subscribe to: the first of `topics` (the consumer's own; its absence fails the start, which is
   * retried and shows in readiness) and those of the others the cluster has. kafkajs's metadata request fails on any
   * missing topic, so one product's usage topic not created yet (or retired) stopped every account's usage.
   */
  private async presentTopics(): Promise<string[]> {
    const [own, ...extra] = this.options.topics;
    if (extra.length === 0) return [own];
    const existing = await this.existingTopics();
    this.missing = extra.filter((topic) => !existing.has(topic));
    if (this.missing.length > 0) {
      this.logger.warn({ groupId: this.groupId, missingTopics: this.missing }, 'topics the consumer is bound to do not exist: read once they are created');
    }
    return [own, ...extra.filter((topic) => existing.has(topic))];
  }

  /**
   * Every `missingTopicsRecheckMs` while some are missing: once one exists, the consumer starts again with it (a new
   * kafkajs consumer: it keeps every topic ever subscribed). A start that fails leaves the consumer down, shown by
   * readiness, and the next tick starts it again whatever the topics: a down consumer charges no one's usage.
   */
  private subscribeToAppeared(): Promise<void> {
    this.resubscribing ??= this.resubscribe().finally(() => {
      this.resubscribing = undefined;
    });
    return this.resubscribing;
  }

  private async resubscribe(): Promise<void> {
    try {
      if (!this.down) {
        const existing = await this.existingTopics();
        const appeared = this.missing.filter((topic) => existing.has(topic));
        if (appeared.length === 0 || this.stopping) return;
        this.logger.info({ groupId: this.groupId, topics: appeared }, 'topics the consumer is bound to were created: subscribing');
        await this.halt();
        this.down = new Error('restarting to subscribe to created topics');
      }
      if (this.stopping) return;
      this.consumer = this.createConsumer();
      this.starting = this.connectAndRun();
      await this.starting;
      this.down = undefined;
    } catch (error) {
      if (this.down) this.down = error instanceof Error ? error : new Error(String(error));
      this.logger.error({ err: error, groupId: this.groupId, down: this.down !== undefined }, 'subscribing to created topics failed; retrying');
      if (!this.stopping && !this.missingTimer) this.checkMissingTopics();
    }
  }

  /** Looks for the missing topics every `missingTopicsRecheckMs` (subscribeToAppeared) until halt() clears it. */
  private checkMissingTopics(): void {
    this.missingTimer = setInterval(() => void this.subscribeToAppeared(), this.options.missingTopicsRecheckMs ?? 60_000);
    this.missingTimer.unref();
  }

  private async existingTopics(): Promise<Set<string>> {
    return new Set(await withAdmin(this.options.kafka, (admin) => admin.listTopics()));
  }

  /** Extra topics the consumer is bound to that the cluster lacked at its start or last check (for metrics and stats). */
  missingTopics(): readonly string[] {
    return this.missing;
  }

  /**
   * Graceful: kafkajs waits for the batch in flight (which finishes and commits), then leaves the group. A start
   * still in flight (a background start joining its group) is waited for first: disconnecting while it runs would
   * let it connect again afterwards and leave a consumer nobody stops.
   */
  async stop(): Promise<void> {
    this.stopping = true; // a subscription to created topics under way does not start it again
    await this.resubscribing;
    this.down = undefined;
    return this.halt();
  }

  private async halt(): Promise<void> {
    await this.starting?.catch(() => undefined);
    clearInterval(this.kafkaCommitTimer);
    clearInterval(this.missingTimer);
    this.missingTimer = undefined;
    // Still a member: Kafka learns where each partition stands (a batch in flight commits its own at its end, see onBatch).
    await this.commitKafkaOffsets((offsets) => this.consumer.commitOffsets(offsets), { all: true });
    await this.consumer.disconnect();
    // Only now: disconnecting waits for the batch in flight, which a long transaction keeps in its group meanwhile.
    clearInterval(this.membershipTimer);
    consumerMetricSources.delete(this);
    this.progress.clear();
    this.stalls.clear();
    this.resumeChecks.clear();
    this.resumeOffsets = undefined;
    this.logger.info({ groupId: this.options.groupId }, 'batch consumer stopped');
  }

  /**
   * The cluster's id, asked again after each group join: the offsets stored in PostgreSQL are per cluster, and a new
   * cluster at the same address (a broker re-provisioned) starts its offsets from 0 again. Taken for the old one, its
   * messages were skipped as redeliveries. A changed id forgets what this consumer knew of the old cluster's offsets.
   * Asked once per join (a resolved promise afterwards); a failed read fails the batch, counted as the partition's
   * failure (readiness), and is asked again when kafkajs offers the batch again: a batch is never applied under an id
   * that may be the old cluster's.
   */
  private clusterIdNow(): Promise<string | undefined> {
    this.clusterIdRead ??= this.readClusterId().then(
      (clusterId) => {
        if (this.clusterId !== undefined && clusterId !== this.clusterId) {
          this.logger.warn({ groupId: this.groupId, previousClusterId: this.clusterId, clusterId }, 'a new Kafka cluster at the same address: offsets stored for the previous one are not used');
          this.committedHere.clear();
          this.kafkaCommitted.clear();
          // Positions and watermarks of the old log: its lag, and offsets the commit timer would send the new cluster.
          this.progress.clear();
          this.watermarksRefreshedAt = 0;
          this.resumeChecks.clear();
          this.resumeOffsets = undefined;
        }
        this.clusterId = clusterId;
        return clusterId;
      },
      (error: unknown) => {
        this.clusterIdRead = undefined;
        throw error;
      },
    );
    return this.clusterIdRead;
  }

  private readClusterId(): Promise<string> {
    return withAdmin(this.options.kafka, async (admin) => (await admin.describeCluster()).clusterId);
  }

  /**
   * Readiness without I/O: throws a NotReadyError when the consumer crashed for good, or when a partition keeps
   * failing on the same batch (naming group, topic, partition, offset, attempts and the last error).
   */
  checkFlowing(): void {
    const { groupId } = this.options;
    if (this.crashed) throw new NotReadyError(`Kafka consumer ${groupId} crashed: ${this.crashed.message}`, { groupId });
    if (this.down) throw new NotReadyError(`Kafka consumer ${groupId} is down, starting again to read created topics: ${this.down.message}`, { groupId });
    this.checkInFlight();
    const stalled = this.stalls.stalled();
    if (stalled.length === 0) return;
    const [first] = stalled;
    const at = first.where as { topic: string; partition: number; offset: string };
    throw new NotReadyError(
      `consumer group ${groupId} stalled on ${at.topic}[${at.partition}]@${at.offset}: failed ${first.attempts} times since ${first.since}: ${first.lastError}` +
        (stalled.length > 1 ? ` (and ${stalled.length - 1} more partitions)` : ''),
      { groupId, stalled },
    );
  }

  /**
   * A transaction that neither commits nor fails (PostgreSQL frozen, a network path dead without a reset) fails no
   * attempt, so no failure streak shows it: one under way for longer than `inFlightAfterMs` is not ready.
   */
  private checkInFlight(): void {
    const now = Date.now();
    const afterMs = this.options.inFlightAfterMs ?? DEFAULT_IN_FLIGHT_MS;
    for (const { since, parts } of this.inFlight) {
      if (now - since < afterMs) continue;
      const { ref, chunk } = parts[0];
      const where = { groupId: this.groupId, topic: ref.topic, partition: ref.partition, offset: chunk[0].offset, runningMs: now - since };
      throw new NotReadyError(
        `consumer group ${this.groupId}: a transaction on ${ref.topic}[${ref.partition}]@${chunk[0].offset} has run for ${Math.round((now - since) / 1000)} s (PostgreSQL not answering?)`,
        { groupId: this.groupId, inFlight: where },
      );
    }
  }

  /** For Terminus: checkFlowing, then whether the cluster answers and has the topics this consumer reads. */
  async health(): Promise<void> {
    this.checkFlowing();
    // Its own topic only: an extra one the cluster lacks is shown by tally_kafka_consumer_topic_missing, not readiness.
    await kafkaHealth(this.options.kafka, { topics: this.options.topics.slice(0, 1) });
  }

  stats(): Readonly<BatchConsumerStats> {
    return { ...this.counters };
  }

  /** For the scrape (batch-consumer.metrics.ts): each partition this member owns and has fetched from. */
  *partitionMetrics(): Iterable<PartitionMetrics> {
    this.refreshHighWatermarks();
    const stalled = new Set(this.stalls.stalled().map(({ where }) => `${String(where.topic)}:${String(where.partition)}`));
    for (const [key, { topic, partition, highWatermark, nextOffset, lastMessageAt }] of this.progress) {
      const lag = nextOffset === undefined ? 0 : Number(highWatermark > nextOffset ? highWatermark - nextOffset : 0n);
      yield { topic, partition, lag, lastMessageAt, stalled: stalled.has(key) };
    }
  }

  /**
   * A partition stuck on a batch fetches nothing new, so its high watermark (and lag) would stand still while
   * producers go on: a scrape also asks the broker, in the background and at most every 10 s; the next scrape
   * shows it. Only partitions this member already fetched from, and the watermark only moves forward.
   */
  private refreshHighWatermarks(): void {
    if (this.refreshingWatermarks || this.progress.size === 0 || Date.now() - this.watermarksRefreshedAt < WATERMARK_REFRESH_MS) return;
    this.watermarksRefreshedAt = Date.now();
    const topics = [...new Set([...this.progress.values()].map(({ topic }) => topic))];
    this.refreshingWatermarks = withAdmin(this.options.kafka, async (admin) => {
      for (const topic of topics) {
        for (const { partition, high } of await admin.fetchTopicOffsets(topic)) {
          const known = this.progress.get(`${topic}:${partition}`);
          if (known && BigInt(high) > known.highWatermark) known.highWatermark = BigInt(high);
        }
      }
    })
      .catch((error: unknown) => this.logger.debug({ groupId: this.groupId, err: error }, 'high watermarks not refreshed for the metrics'))
      .finally(() => (this.refreshingWatermarks = undefined));
  }

  /** A fetch tells the partition's high watermark; the next offset to apply is its first message until a commit moves it. */
  private fetched(topic: string, partition: number, highWatermark: string, firstOffset: string | undefined): void {
    const key = `${topic}:${partition}`;
    const known = this.progress.get(key);
    if (known) known.highWatermark = BigInt(highWatermark) > known.highWatermark ? BigInt(highWatermark) : known.highWatermark;
    else this.progress.set(key, { topic, partition, highWatermark: BigInt(highWatermark), nextOffset: firstOffset === undefined ? undefined : BigInt(firstOffset) });
  }

  private applied(topic: string, partition: number, last: KafkaMessage): void {
    const known = this.progress.get(`${topic}:${partition}`);
    if (!known) return;
    known.nextOffset = BigInt(last.offset) + 1n;
    known.lastMessageAt = Number(last.timestamp);
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const ref: PartitionRef = { groupId: this.options.groupId, topic: batch.topic, partition: batch.partition, clusterId: this.clusterId };
    try {
      ref.clusterId = await this.clusterIdNow();
    } catch (error) {
      this.failedOn(ref, { offset: batch.messages[0]?.offset ?? batch.highWatermark, step: 'read the cluster id' }, error);
      throw error;
    }
    if (batch.messages.length > 0 && !(await this.fetchingFromStoredOrStall(ref, batch.messages[0].offset))) return;
    this.fetched(batch.topic, batch.partition, batch.highWatermark, batch.messages[0]?.offset);
    for (let start = 0; start < batch.messages.length; start += this.maxPerTransaction) {
      // A seek or a lost partition invalidates what is left; the new owner gets it again from Kafka.
      if (payload.isStale()) return;
      const chunk = batch.messages.slice(start, start + this.maxPerTransaction);
      if (!(await this.applyTogether({ ref, chunk, payload, verdicts: new Map() }))) return;
      this.stalls.succeeded(`${ref.topic}:${ref.partition}`);
      payload.resolveOffset(chunk[chunk.length - 1].offset);
      await this.heartbeat(payload);
    }
    // Stopping: the last batch tells Kafka where every partition stands before the consumer leaves its group (kafkajs
    // ignores consumer.commitOffsets once stopping; the batch's own commit still goes through).
    if (!payload.isRunning()) {
      await this.commitKafkaOffsets(async (offsets) => payload.commitOffsetsIfNecessary({ topics: topicsOf(offsets) }), { all: true });
    }
  }

  /**
   * fetchingFromStored, its failure (the stored offsets unreadable: the table missing, PostgreSQL refusing) counted as
   * a failed batch of the partition, which makes no progress until it succeeds: readiness shows it (kafkajs retries
   * the batch, then restarts the consumer, which would otherwise look healthy all along).
   */
  private async fetchingFromStoredOrStall(ref: PartitionRef, firstOffset: string): Promise<boolean> {
    try {
      return await this.fetchingFromStored(ref, firstOffset);
    } catch (error) {
      const streak = this.failedOn(ref, { offset: firstOffset }, error);
      this.logger.warn({ ...ref, offset: firstOffset, attempt: streak.attempts, failingSince: streak.since, err: error }, 'stored offsets not read: the partition waits');
      throw error;
    }
  }

  /**
   * Kafka's committed offset is only where fetching resumes; PostgreSQL's stored one says what was applied. Should
   * Kafka's be ahead (a database restored, or failed over to a replica that was behind; `tally consumers set-offset`
   * failing its database write after moving Kafka), the messages in between would never be fetched, never applied:
   * so the first batch of each partition in an assignment is checked against the stored offset and, when it starts
   * further on, the partition is sought back to it (the batch is then stale: false). Once per assignment: where
   * Kafka no longer holds the offsets sought (deleted by retention; or transaction markers, which are no messages)
   * fetching goes on from the first it holds, and a loss is logged as an error and counted
   * (tally_kafka_consumer_lost_offsets_total, alert TallyConsumerLostMessages). With nothing stored on this cluster,
   * a consumer that starts from the beginning seeks to the first offset Kafka holds.
   */
  private async fetchingFromStored(ref: PartitionRef, firstOffset: string): Promise<boolean> {
    const key = `${ref.topic}:${ref.partition}`;
    const check = this.resumeChecks.get(key);
    if (check === 'checked') return true;
    const first = BigInt(firstOffset);
    if (check) {
      this.resumeChecks.set(key, 'checked');
      if (check.stored && first > check.soughtTo) await this.reportUnfetchable(ref, check.soughtTo, first);
      return true;
    }
    this.resumeOffsets ??= readResumeOffsets(this.options.pool, this.options.offsetsSchema, this.groupId, this.clusterId);
    const stored = (await this.resumeOffsets.catch((error: unknown) => {
      this.resumeOffsets = undefined;
      throw error;
    })).get(key);
    const resumeAt = stored ?? ((this.options.fromBeginning ?? true) ? 0n : undefined);
    if (resumeAt === undefined || first <= resumeAt) {
      this.resumeChecks.set(key, 'checked');
      return true;
    }
    this.resumeChecks.set(key, { soughtTo: resumeAt, stored: stored !== undefined });
    if (stored !== undefined) {
      this.logger.warn(
        { ...ref, fetchedFrom: firstOffset, storedResumeOffset: stored.toString() },
        "Kafka's committed offset is ahead of the offset stored in PostgreSQL (a restored or failed-over database?): fetching again from the stored one",
      );
    }
    this.consumer.seek({ topic: ref.topic, partition: ref.partition, offset: resumeAt.toString() });
    return false;
  }

  /** After seeking back to `soughtTo`, fetching started at `first`: lost to retention when Kafka's log now starts after `soughtTo`. */
  private async reportUnfetchable(ref: PartitionRef, soughtTo: bigint, first: bigint): Promise<void> {
    const logStart = await withAdmin(this.options.kafka, async (admin) => (await admin.fetchTopicOffsets(ref.topic)).find(({ partition }) => partition === ref.partition)?.low).catch(
      () => undefined,
    );
    const missing = first - soughtTo === 1n ? soughtTo.toString() : `${soughtTo}-${first - 1n}`;
    if (logStart !== undefined && BigInt(logStart) <= soughtTo) {
      this.logger.debug({ ...ref, missing }, 'offsets after the stored one hold no messages (transaction markers)');
      return;
    }
    // Known (the log's start): what retention took before it was applied. Unknown (the admin call failed): the gap.
    this.metrics.lost(ref.topic, ref.partition, (logStart !== undefined ? BigInt(logStart) : first) - soughtTo);
    this.logger.error(
      { ...ref, missing, logStartOffset: logStart ?? null },
      'messages after the offset stored in PostgreSQL are no longer in Kafka (deleted by retention): they were never applied',
    );
  }

  /**
   * Commits to Kafka, for each partition whose next offset to apply moved since, that offset (everything before it is
   * committed in PostgreSQL). Kafka's committed offset only says where fetching resumes after a restart or a
   * rebalance, so it is committed every KAFKA_COMMIT_INTERVAL_MS and when stopping rather than after every batch, as
   * kafkajs's autoCommit would: that costs a round trip to the broker after each partition's batch, and the worker
   * waiting on it comes late for the next transaction group (applyTogether). What a crash or a rebalance makes it
   * read again (at most that interval's messages) is skipped as redelivered. A failure is retried at the next tick.
   * `all`: every partition, moved or not (when stopping: a tick's commit may have been a no-op of a stopping kafkajs).
   */
  private async commitKafkaOffsets(commit: (offsets: TopicPartitionOffset[]) => Promise<unknown>, { all = false } = {}): Promise<void> {
    while (this.committingToKafka) await this.committingToKafka;
    const due: TopicPartitionOffset[] = [];
    for (const [key, { topic, partition, nextOffset }] of this.progress) {
      if (nextOffset !== undefined && (all || nextOffset > (this.kafkaCommitted.get(key) ?? -1n))) due.push({ topic, partition, offset: nextOffset.toString() });
    }
    if (due.length === 0) return;
    this.committingToKafka = commit(due).then(
      () => {
        for (const { topic, partition, offset } of due) this.kafkaCommitted.set(`${topic}:${partition}`, BigInt(offset));
      },
      (error: unknown) => this.logger.warn({ groupId: this.groupId, partitions: due.length, err: error }, 'Kafka offsets not committed; retrying at the next tick'),
    );
    try {
      await this.committingToKafka;
    } finally {
      this.committingToKafka = undefined;
    }
  }

  /**
   * Chunks of several partitions of one topic that arrive together share one transaction: kafkajs hands a fetch's
   * batches to `partitionsConsumedConcurrently` workers at once, so each round of a fetch would otherwise pay a
   * transaction (and its round trips and commit) per partition. They are gathered until the current macrotask's
   * work is done (setImmediate), then applied in groups of one topic and at most groupMaxMessages messages.
   * A group that fails in any way is rolled back and its chunks applied one transaction each, as a lone chunk always
   * is (retries, isolating a rejected message, backoff): grouping changes how many commits there are, never what.
   */
  private applyTogether(part: ChunkPart): Promise<boolean> {
    // Grouping off (or one partition at a time): no macrotask hop to wait for company.
    if (this.groupMaxMessages === 0) {
      return this.applyWithRetry(part.ref, part.chunk, part.payload, part.verdicts);
    }
    return new Promise<boolean>((resolve, reject) => {
      this.gathering.push({ part, resolve, reject });
      if (this.gathering.length === 1) setImmediate(() => this.applyGathered());
    });
  }

  private applyGathered(): void {
    const gathered = this.gathering;
    this.gathering = [];
    const live: Gathered[] = [];
    for (const item of gathered) {
      // A seek or a lost partition since it was gathered: abandoned, the new owner gets it again from Kafka.
      if (item.part.payload.isStale()) item.resolve(false);
      else live.push(item);
    }
    for (const group of groupsOf(live, this.groupMaxMessages)) void this.applyGroup(group);
  }

  private async applyGroup(group: Gathered[]): Promise<void> {
    if (group.length > 1) {
      try {
        await this.applyInTransaction(group.map(({ part }) => part));
        for (const { resolve } of group) resolve(true);
        return;
      } catch (error) {
        this.counters.groupsSplit += 1;
        const { topic } = group[0].part.ref;
        this.logger.warn(
          { groupId: this.groupId, topic, partitions: group.map(({ part }) => part.ref.partition), cause: error instanceof Error ? error.message : String(error) },
          'a transaction over several partitions failed: rolled back, applying each partition on its own',
        );
      }
    }
    await Promise.all(group.map(({ part, resolve, reject }) => this.applyWithRetry(part.ref, part.chunk, part.payload, part.verdicts).then(resolve, reject)));
  }

  /** Returns false when the chunk was abandoned (stopping or partition lost while backing off). */
  private async applyWithRetry(ref: PartitionRef, chunk: KafkaMessage[], payload: EachBatchPayload, verdicts: Map<string, Verdict>): Promise<boolean> {
    for (let failures = 0; ; ) {
      try {
        await this.applyInTransaction([{ ref, chunk, payload, verdicts }]);
        return true;
      } catch (error) {
        if (this.heartbeatErrors.has(error as object)) throw error; // rebalance: kafkajs rejoins and redelivers
        if (error instanceof StoredOffsetWentBack) {
          this.seekBackToStored(error, payload);
          return false;
        }
        if (error instanceof HandlerRejected) {
          if (error.offsets.length === 1) {
            verdicts.set(error.offsets[0], { reason: error.violation.code, details: error.violation.issues });
            continue;
          }
          // Which message did the handler refuse? Apply one per transaction; only the culprit is dead-lettered.
          this.logger.warn({ ...ref, offsets: error.offsets.length, reason: error.violation.code }, 'handler rejected a batch: isolating the message');
          for (const message of chunk) {
            if (!(await this.applyWithRetry(ref, [message], payload, verdicts))) return false;
          }
          return true;
        }
        failures += 1;
        // The streak outlives kafkajs's restart after BatchRetriesExhaustedError: the same batch comes back.
        const offsets = { offset: chunk[0].offset, lastOffset: chunk[chunk.length - 1].offset, messages: chunk.length };
        const streak = this.failedOn(ref, offsets, error);
        const cause = error instanceof Error ? error.message : String(error);
        if (failures > this.retryPolicy.retries) {
          this.logger.error({ ...ref, ...offsets, attempts: failures, failingSince: streak.since, err: error }, 'batch failed after retries: restarting the consumer');
          throw new BatchRetriesExhaustedError(ref.topic, ref.partition, chunk[0].offset, error);
        }
        this.counters.retries += 1;
        // An unavailable dependency (PostgreSQL down or its pool exhausted, a timeout) has no culprit to name: the chunk
        // is retried whole, not as a transaction per message at the moment the database can least take them.
        if (failures >= this.isolateAfter && chunk.length > 1 && !unavailableDependency(error)) {
          // The same batch keeps failing: one message per transaction names the culprit (and commits those before it).
          this.logger.warn({ ...ref, ...offsets, attempt: failures, cause }, 'batch keeps failing: applying its messages one at a time');
          for (const message of chunk) {
            if (!(await this.applyWithRetry(ref, [message], payload, verdicts))) return false;
            this.stalls.succeeded(`${ref.topic}:${ref.partition}`);
          }
          return true;
        }
        const delayMs = backoffDelayMs(this.retryPolicy, failures);
        this.logger.warn({ ...ref, ...offsets, attempt: failures, attemptsInStreak: streak.attempts, failingSince: streak.since, delayMs, cause }, 'batch failed: rolled back, retrying');
        if (!(await this.backOff(delayMs, payload))) return false;
      }
    }
  }

  /** A failed attempt at a partition's batch (`where`: its offsets), counted and added to its stall streak. */
  private failedOn(ref: PartitionRef, where: { offset: string } & Record<string, unknown>, error: unknown): FailureStreak {
    this.metrics.failed(ref.topic, ref.partition, error);
    return this.stalls.failed(`${ref.topic}:${ref.partition}`, { groupId: ref.groupId, topic: ref.topic, partition: ref.partition, ...where }, error);
  }

  /**
   * The database went back (StoredOffsetWentBack) while this member kept fetching from where it was: the messages after
   * the stored offset must be fetched again, or they would never be applied. Seeks the partition back (what is in
   * flight for it is stale) and from now on compares with the stored offset.
   */
  /** The partition's next offset (its high watermark) as the broker says now. */
  private async logEnd(ref: PartitionRef): Promise<bigint> {
    const offsets = await withAdmin(this.options.kafka, (admin) => admin.fetchTopicOffsets(ref.topic));
    const partition = offsets.find((offset) => offset.partition === ref.partition);
    if (!partition) throw new Error(`${ref.topic}[${ref.partition}]: the broker does not know this partition`);
    return BigInt(partition.high);
  }

  private seekBackToStored({ ref, stored, committedHere }: StoredOffsetWentBack, payload: EachBatchPayload): void {
    const key = `${ref.topic}:${ref.partition}`;
    this.committedHere.set(key, stored);
    if (!payload.isRunning() || payload.isStale()) return;
    this.logger.warn(
      { ...ref, storedOffset: stored.toString(), committedHere: committedHere.toString() },
      'the offset stored in PostgreSQL went back (a failed-over or restored database?): fetching again from the stored one',
    );
    this.consumer.seek({ topic: ref.topic, partition: ref.partition, offset: (stored + 1n).toString() });
  }

  /** Sleeps in short slices, heartbeating so a long backoff does not cost the partition. */
  private async backOff(delayMs: number, payload: EachBatchPayload): Promise<boolean> {
    const until = Date.now() + delayMs;
    while (Date.now() < until) {
      if (!payload.isRunning() || payload.isStale()) return false;
      await sleep(Math.min(1_000, until - Date.now()));
      await this.heartbeat(payload);
    }
    return payload.isRunning() && !payload.isStale();
  }

  private async heartbeat(payload: EachBatchPayload): Promise<void> {
    try {
      await payload.heartbeat();
    } catch (error) {
      if (typeof error === 'object' && error !== null) this.heartbeatErrors.add(error);
      throw error;
    }
  }

  /**
   * One transaction over the chunks of one or more partitions: lock their stored offsets, drop redelivered messages,
   * parse, `handle` each partition's valid ones, store the offsets, COMMIT; then the after-commit effects. A
   * ContractViolation from `handle` becomes a HandlerRejected naming that chunk's offsets.
   *
   * A pass that has messages to dead-letter rolls back instead, sends their dead letters with no transaction open,
   * and runs again without them: a dead-letter topic that refuses writes (retried for a minute) must not keep a
   * transaction open, since an open transaction that has written holds back the relay's tail in the ledger's database
   * (and with it every account's events). Each pass sends at least one more dead letter, so the passes end. A crash
   * between a dead letter's ack and the COMMIT redelivers the chunk and dead-letters the same messages again: the DLQ
   * is at-least-once (its readers dedupe by original topic/partition/offset), and no dead letter is lost.
   */
  private async applyInTransaction(parts: ChunkPart[]): Promise<void> {
    const startedAt = process.hrtime.bigint();
    const startedAtMs = Date.now();
    const running = { since: startedAtMs, parts };
    this.inFlight.add(running);
    try {
      while ((await this.applyAndCommit(parts, startedAt, startedAtMs)) === 'dead letters sent');
    } finally {
      this.inFlight.delete(running);
    }
  }

  /**
   * Every heartbeat interval (one timer for the consumer: a timer per transaction cost the ledger ~10% of its
   * throughput in the bench): a transaction under way for longer than the interval gets a heartbeat beside it, never
   * awaited by it (the transaction must not wait on the group's coordinator: see applyAndCommit). kafkajs heartbeats
   * only between batches, so a transaction longer than the group's session (a slow PostgreSQL: up to
   * PG_QUERY_TIMEOUT_MS a statement) had this member evicted and the whole group rebalanced, again on every such
   * batch. kafkajs shares one request among concurrent calls and sends none before the interval. A failure (a
   * rebalance under way, the coordinator gone) is left to the heartbeat after the commit, which ends the batch and
   * rejoins; the offset row locked in the transaction fences the member that took the partition.
   */
  private keepMembership(): void {
    const now = Date.now();
    for (const { since, parts } of this.inFlight) {
      if (now - since < this.heartbeatIntervalMs) continue;
      // One heartbeat is the member's, whichever partition's payload sends it.
      void this.heartbeat(parts[0].payload).catch((error: unknown) => this.logger.debug({ groupId: this.groupId, err: error }, 'heartbeat beside a transaction under way failed'));
      return;
    }
  }

  private async applyAndCommit(parts: ChunkPart[], startedAt: bigint, startedAtMs: number): Promise<'committed' | 'dead letters sent'> {
    const { pool, offsetsSchema, hooks } = this.options;
    const tx = await pool.connect();
    const outcomes: PartOutcome[] = [];
    const afterCommit: Array<() => void | Promise<void>> = [];
    /** The pass has dead letters to send: rolled back, to send them once its connection is back in the pool. */
    let deadLettering = false;
    try {
      const stored = await beginAndLockStoredOffsets(tx, offsetsSchema, parts.map(({ ref }) => ref));
      for (const [index, part] of parts.entries()) {
        const outcome = await this.applyPart(tx, part, stored[index], afterCommit);
        if (outcome) outcomes.push(outcome);
      }

      deadLettering = outcomes.some(({ deadLetters }) => deadLetters.length > 0);
      if (outcomes.length === 0 || deadLettering) {
        await tx.query('ROLLBACK');
      } else {
        // No heartbeat before the COMMIT: a coordinator that does not answer would keep the rows the handler locked,
        // and this transaction's id (which holds back the relay's tail), for up to the request timeout. The offset
        // row locked above fences a consumer that lost its partition; onBatch heartbeats once the chunk committed.
        await storeOffsetsAndCommit(tx, offsetsSchema, outcomes.map(({ part, lastOffset }) => ({ ref: part.ref, offset: lastOffset })));
      }
    } catch (error) {
      // A broken connection cannot roll back; destroy it rather than return it to the pool.
      await tx.query('ROLLBACK').then(
        () => tx.release(),
        (rollbackError: Error) => tx.release(rollbackError),
      );
      throw error;
    }
    // Given back once, here, outside the try above: what follows may fail (a dead letter's send) without touching it.
    tx.release();
    if (outcomes.length === 0) {
      // Every message was a redelivery: nothing to store.
      for (const { ref, chunk } of parts) this.applied(ref.topic, ref.partition, chunk[chunk.length - 1]);
      return 'committed';
    }
    if (deadLettering) {
      await this.sendDeadLetters(outcomes);
      return 'dead letters sent';
    }
    const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
    this.counters.transactions += 1;
    for (const { part: { ref }, lastOffset } of outcomes) this.committedHere.set(`${ref.topic}:${ref.partition}`, BigInt(lastOffset));
    for (const { ref, chunk } of parts) this.applied(ref.topic, ref.partition, chunk[chunk.length - 1]);
    for (const { part: { ref, chunk }, lastOffset, applied, deadLettered } of outcomes) {
      this.counters.applied += applied;
      this.counters.deadLettered += deadLettered;
      // Broker timestamps are another machine's clock (or the producer's): a message "from the future" waited 0.
      const waitedMs = Math.max(0, startedAtMs - Number(chunk[0].timestamp));
      this.metrics.committed(ref.topic, ref.partition, applied, seconds, Number.isFinite(waitedMs) ? waitedMs / 1000 : 0);
      this.logger.debug({ ...ref, lastOffset, applied, deadLettered, partitionsInTransaction: parts.length }, 'batch committed');
    }
    for (const effect of afterCommit) {
      try {
        await effect();
      } catch (error) {
        this.logger.error({ groupId: this.groupId, partitions: parts.map(({ ref }) => `${ref.topic}:${ref.partition}`), err: error }, 'after-commit effect failed (the batch stays committed)');
      }
    }
    for (const { part: { ref }, lastOffset } of outcomes) await hooks?.afterDbCommit?.({ topic: ref.topic, partition: ref.partition, lastOffset });
    return 'committed';
  }

  /** Sends a rolled-back pass's dead letters and marks their messages sent, so the next pass skips them. */
  private async sendDeadLetters(outcomes: PartOutcome[]): Promise<void> {
    for (const { part, deadLetters } of outcomes) {
      await this.publishDeadLetters(part.ref, deadLetters);
      for (const { message, reason, details } of deadLetters) part.verdicts.set(message.offset, { reason, details, sent: true });
    }
  }

  /** A replayed dead letter another group failed: this one applied the message the first time (passOverOtherGroupsReplays). */
  private replayedForAnotherGroup(message: KafkaMessage): boolean {
    if (!this.options.passOverOtherGroupsReplays) return false;
    const forGroup = message.headers?.[REPLAY_FOR_GROUP_HEADER];
    return forGroup !== undefined && forGroup !== null && forGroup.toString() !== this.groupId;
  }

  /**
   * One partition's chunk inside the (possibly shared) transaction: drop what the stored offset says was applied,
   * parse, `handle` the valid messages; undefined when every message was a redelivery.
   */
  private async applyPart(tx: PoolClient, part: ChunkPart, stored: bigint, afterCommit: Array<() => void | Promise<void>>): Promise<PartOutcome | undefined> {
    const { parse, handle } = this.options;
    const { ref, chunk, verdicts } = part;
    const ours = this.committedHere.get(`${ref.topic}:${ref.partition}`);
    if (ours !== undefined && stored < ours) throw new StoredOffsetWentBack(ref, stored, ours);
    const fresh = chunk.filter((message) => BigInt(message.offset) > stored);
    // Redelivered as a whole (after a restart, a rebalance), or a log that is not the one applied: it ends before. The
    // fetch's high watermark says so at no cost; only then is the broker asked now (the fetch may be older than what
    // another member applied since), so the round trip is made on that rare path alone.
    if (fresh.length === 0 && BigInt(part.payload.batch.highWatermark) <= stored) {
      const logEnd = await this.logEnd(ref);
      if (logEnd <= stored) throw new StoredOffsetBeyondLog(ref, stored, logEnd);
    }
    if (fresh.length < chunk.length) {
      this.counters.skippedRedeliveries += chunk.length - fresh.length;
      this.logger.info({ ...ref, storedOffset: stored.toString(), skipped: chunk.length - fresh.length }, 'skipped redelivered messages');
    }
    if (fresh.length === 0) return undefined;

    const valid: ConsumedMessage<T>[] = [];
    const raw = new Map<string, KafkaMessage>();
    let deadLetters: DeadLetter[] = [];
    let deadLettered = 0;
    for (const message of fresh) {
      const verdict = verdicts.get(message.offset);
      if (verdict?.sent) {
        deadLettered += 1;
        continue;
      }
      if (verdict) {
        deadLetters.push({ topic: ref.topic, partition: ref.partition, message, reason: verdict.reason, details: verdict.details });
        continue;
      }
      if (this.replayedForAnotherGroup(message)) {
        this.counters.skippedForOtherGroups += 1;
        this.metrics.passedOver(ref.topic);
        this.logger.info({ ...ref, offset: message.offset, forGroup: message.headers?.[REPLAY_FOR_GROUP_HEADER]?.toString() }, "passed over a replayed dead letter of another group");
        continue;
      }
      try {
        const value = parse(ref.topic, message);
        valid.push({ offset: message.offset, key: message.key?.toString() ?? null, value, headers: headersToStrings(message.headers), timestamp: message.timestamp });
        raw.set(message.offset, message);
      } catch (error) {
        deadLetters.push({ topic: ref.topic, partition: ref.partition, message, ...verdictOf(error) });
      }
    }

    let applied = 0;
    if (valid.length > 0) {
      const rejected: DeadLetter[] = [];
      const deadLetter = (message: ConsumedMessage<T>, reason: string, details?: unknown) => {
        const original = raw.get(message.offset);
        if (!original) throw new Error(`deadLetter: offset ${message.offset} is not in this batch`);
        rejected.push({ topic: ref.topic, partition: ref.partition, message: original, reason, details });
      };
      try {
        await handle({ topic: ref.topic, partition: ref.partition, messages: valid, tx, deadLetter, afterCommit: (effect) => afterCommit.push(effect) });
      } catch (error) {
        if (error instanceof ContractViolation) throw new HandlerRejected(error, valid.map((message) => message.offset));
        throw error;
      }
      applied = valid.length - rejected.length;
      deadLetters = deadLetters.concat(rejected).sort((a, b) => Number(BigInt(a.message.offset) - BigInt(b.message.offset)));
    }
    return { part, lastOffset: fresh[fresh.length - 1].offset, applied, deadLetters, deadLettered };
  }

  private async publishDeadLetters(ref: PartitionRef, deadLetters: DeadLetter[]): Promise<void> {
    if (deadLetters.length === 0) return;
    const target = this.options.deadLetterTopic(ref.topic);
    for (const deadLetter of deadLetters) {
      this.metrics.deadLettered(ref.topic, deadLetter.reason);
      // In the message's context (rare, so built here): the line names the request that sent it and its trace.
      context.with(contextOf(carrierFromHeaders(headersToStrings(deadLetter.message.headers))), () =>
        this.logger.warn(
          // The details as the dead letter carries them: bigints as text, cut when long (a log line is no bigger).
          { ...ref, offset: deadLetter.message.offset, reason: deadLetter.reason, details: JSON.parse(detailsHeader(deadLetter.details)), deadLetterTopic: target ?? null },
          target ? 'dead-lettering message' : 'poison message dropped: no dead-letter topic configured',
        ),
      );
    }
    if (!target) return;
    const now = new Date();
    await this.options.producer.send(target, deadLetters.map((deadLetter) => toDeadLetterMessage(deadLetter, ref.groupId, now)));
  }
}

/** The trace of a consumed batch's messages (traceBatch). */
export interface BatchTrace {
  /**
   * The context of the batch's `index`-th message (its `process` span's when traced, else the one its headers
   * carry: request id and trace id for log lines), or undefined when it carries none. Built on first ask.
   */
  of(index: number): ConsumedTrace | undefined;
  /** Ends the batch's spans, failed when `error` is given. */
  end(error?: unknown): void;
}

/**
 * When tracing is on: a `<topic> process` span per message of the batch that carries a sampled trace context (child
 * of its producer's span), to end once the batch is applied. Off: nothing is allocated until a message's context is
 * asked for (`of`, e.g. to write a log line for it).
 */
export function traceBatch(batch: Pick<HandlerBatch<unknown>, 'topic' | 'partition' | 'messages'>): BatchTrace {
  const name = `${batch.topic} process`;
  const attributesOf = (offset: string) => ({
    'messaging.system': 'kafka', 'messaging.destination.name': batch.topic, 'messaging.destination.partition.id': String(batch.partition), 'messaging.kafka.offset': offset,
  });
  if (!tracingEnabled()) {
    return { of: (index) => continueTrace(name, SpanKind.CONSUMER, carrierFromHeaders(batch.messages[index].headers)), end: NO_SPANS };
  }
  const traces = batch.messages.map((message) => continueTrace(name, SpanKind.CONSUMER, carrierFromHeaders(message.headers), attributesOf(message.offset)));
  return { of: (index) => traces[index], end: (error?: unknown) => traces.forEach((traced) => endSpan(traced?.span, error)) };
}

const NO_SPANS = (): void => undefined;

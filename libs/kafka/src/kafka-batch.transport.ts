import { BaseRpcContext, type CustomTransportStrategy, type MessageHandler, Server } from '@nestjs/microservices';
import { BackgroundStart, NotReadyError, type StallThresholds } from '@tally/shared';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Pool } from 'pg';
import { isObservable, lastValueFrom } from 'rxjs';
import { BatchConsumer, type BatchConsumerHooks, type BatchConsumerStats, type HandlerBatch } from './batch.consumer';
import { silentKafkaLogger, type KafkaLogger } from './kafka.logger';
import { KafkaProducer } from './kafka.producer';
import { kafkaHealth } from './kafka-topics.client';
import type { RetryPolicy } from './retry.schedule';

/** The transport's id: `@KafkaBatchHandler` binds its handlers to this transport only, whatever else the app connects. */
export const KAFKA_BATCH_TRANSPORT = Symbol('KafkaBatchTransport');

/** What a handler receives: one partition's parsed messages and the open transaction its offset commits in. */
export type KafkaBatch<T> = HandlerBatch<T>;

/** Per-consumer settings a handler declares (`@KafkaBatchHandler` puts them in the pattern's `extras`). */
export interface KafkaBatchConsumerSettings<T = unknown> {
  /** Consumer group; a binding or the transport's `groupId` may set it instead. */
  group?: string;
  /** Pure; throws a ContractViolation (or anything) for a message to dead-letter. Required here or on the transport. */
  parse?: (topic: string, message: KafkaMessage) => T;
  /** A topic, or a function of the consumed topic; undefined = poison messages are logged and dropped. */
  deadLetterTopic?: string | ((topic: string) => string | undefined);
  partitionsConsumedConcurrently?: number;
  maxMessagesPerTransaction?: number;
  fromBeginning?: boolean;
  retry?: Partial<RetryPolicy>;
  stall?: Partial<StallThresholds>;
  isolateAfterFailures?: number;
  /** See BatchConsumerOptions.passOverOtherGroupsReplays: only for topics no untrusted principal can write. */
  passOverOtherGroupsReplays?: boolean;
}

/** What configuration decides for a pattern at deployment (the real topic name, the group), over the handler's defaults. */
export interface KafkaBatchBinding extends Omit<KafkaBatchConsumerSettings, 'parse' | 'group'> {
  /**
   * Names the consumer in readiness (`checkFlowing(name)`, a health check per consumer) and in start logs, e.g.
   * `usage-consumer`; default: `kafka consumer <group> (<topic>)`.
   */
  name?: string;
  /** The topic actually consumed; default: the pattern's topic (the contract's name). */
  topic?: string;
  /**
   * More topics of the same contract consumed by the same group and handler (e.g. the ledger's per-product usage
   * topics); the handler tells them apart by `batch.topic`.
   */
  extraTopics?: readonly string[];
  groupId?: string;
  hooks?: BatchConsumerHooks;
}

export interface KafkaBatchTransportOptions {
  kafka: Kafka;
  /** Offsets are stored in this pool's database, in the handler's transaction. */
  pool: Pool;
  /** PostgreSQL schema holding `kafka_consumer_offsets`. */
  offsetsSchema: string;
  /** For dead letters; default: one the transport creates, connects and disconnects. */
  producer?: KafkaProducer;
  logger?: KafkaLogger;
  /** Default consumer group for patterns that name none. */
  groupId?: string;
  /** Per pattern topic (the contract's topic name): what config decides. */
  bindings?: Record<string, KafkaBatchBinding>;
  /**
   * Which patterns this process consumes (e.g. the ledger's WORKERS setting); default all. A pattern left out
   * gets no consumer, so it is neither consumed nor in readiness.
   */
  consumes?: (pattern: KafkaBatchPattern) => boolean;
  /** Defaults for every consumer, under the handler's settings and the bindings. */
  defaults?: Omit<KafkaBatchConsumerSettings, 'group'>;
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  maxWaitTimeMs?: number;
  /** A start still joining after this long is reported not ready (BackgroundStart); default 2 minutes. */
  slowStartAfterMs?: number;
  /** Backoff between failed starts (BackgroundStart). */
  startRetryMinMs?: number;
  startRetryMaxMs?: number;
}

/** `@Ctx()` of a Kafka batch handler. */
export class KafkaBatchContext extends BaseRpcContext<[topic: string, partition: number, groupId: string]> {
  getTopic(): string {
    return this.args[0];
  }
  getPartition(): number {
    return this.args[1];
  }
  getGroupId(): string {
    return this.args[2];
  }
}

/** A pattern is a topic (the contract's name) or `{ topic, group }`, to consume one topic in two groups. */
export interface KafkaBatchPattern {
  topic: string;
  group?: string;
}

/** Reads the pattern back from the key Nest stored it under (a string, or an object as sorted JSON). */
export function parseKafkaBatchPattern(key: string): KafkaBatchPattern {
  if (!key.startsWith('{')) return { topic: key };
  let parsed: Partial<KafkaBatchPattern>;
  try {
    parsed = JSON.parse(key) as Partial<KafkaBatchPattern>;
  } catch {
    throw new Error(`Kafka batch pattern ${key} must be a topic or { topic, group? }`);
  }
  if (typeof parsed.topic !== 'string' || (parsed.group !== undefined && typeof parsed.group !== 'string')) {
    throw new Error(`Kafka batch pattern ${key} must be a topic or { topic, group? }`);
  }
  return { topic: parsed.topic, group: parsed.group };
}

/** One consumer's resolved settings (pure, unit-tested): handler extras < transport defaults < binding. */
export interface ResolvedKafkaConsumer {
  /** The pattern's key, as Nest stores the handler. */
  name: string;
  /** The binding's `name`, if any: readiness and logs. */
  readinessName?: string;
  topic: string;
  /** The binding's extraTopics, consumed with `topic`. */
  extraTopics?: readonly string[];
  groupId: string;
  settings: KafkaBatchConsumerSettings & { parse: NonNullable<KafkaBatchConsumerSettings['parse']> };
  hooks?: BatchConsumerHooks;
}

export function resolveKafkaConsumers(
  handlers: ReadonlyMap<string, Pick<MessageHandler, 'isEventHandler' | 'extras' | 'next'>>,
  options: Pick<KafkaBatchTransportOptions, 'groupId' | 'bindings' | 'defaults' | 'consumes'>,
): ResolvedKafkaConsumer[] {
  const resolved: ResolvedKafkaConsumer[] = [];
  const groups = new Map<string, string>();
  for (const [key, handler] of handlers) {
    if (!handler.isEventHandler) throw new Error(`Kafka batch pattern ${key}: use @EventPattern (or @KafkaBatchHandler); there is no reply to a batch`);
    if (handler.next) throw new Error(`Kafka batch pattern ${key} has several handlers: one handler per pattern (they would share one transaction)`);
    const pattern = parseKafkaBatchPattern(key);
    if (options.consumes && !options.consumes(pattern)) continue;
    const extras = (handler.extras ?? {}) as KafkaBatchConsumerSettings;
    const { name: readinessName, topic: boundTopic, extraTopics, groupId: boundGroup, hooks, ...bound } = options.bindings?.[pattern.topic] ?? {};
    const settings = { ...options.defaults, ...withoutUndefined(extras), ...withoutUndefined(bound) };
    const groupId = boundGroup ?? pattern.group ?? extras.group ?? options.groupId;
    if (!groupId) throw new Error(`Kafka batch pattern ${key}: no consumer group (pattern, handler, binding or transport groupId)`);
    if (!settings.parse) throw new Error(`Kafka batch pattern ${key}: no parse (every message is validated at the edge)`);
    const owner = groups.get(groupId);
    if (owner) throw new Error(`Kafka batch patterns ${owner} and ${key} share consumer group ${groupId}: one group per consumer`);
    groups.set(groupId, key);
    resolved.push({
      name: key,
      ...(readinessName === undefined ? {} : { readinessName }),
      topic: boundTopic ?? pattern.topic,
      ...(extraTopics?.length ? { extraTopics } : {}),
      groupId,
      settings: { ...settings, parse: settings.parse },
      hooks,
    });
  }
  return resolved;
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

interface RunningConsumer {
  spec: ResolvedKafkaConsumer;
  consumer: BatchConsumer<unknown>;
  starting: BackgroundStart;
}

/**
 * libs/kafka's BatchConsumer as a Nest transport: each `@EventPattern` / `@KafkaBatchHandler` handler becomes one
 * BatchConsumer (its own group) whose `handle` is the controller method, called with the batch and its open
 * transaction; the guarantees are the BatchConsumer's (offsets stored in the same transaction as the effects,
 * poison messages dead-lettered with the reason, never a blocked partition, stall detection, graceful stop).
 *
 * `listen()` returns at once and joins the groups in the background, retrying a failed start (joining can take
 * 30+ s after a crash; the HTTP listener must not wait); `health()` reports it. `close()` (app.close, SIGTERM)
 * finishes the batches in flight and leaves the groups.
 */
export class KafkaBatchTransport extends Server implements CustomTransportStrategy {
  override transportId = KAFKA_BATCH_TRANSPORT;
  private readonly log: KafkaLogger;
  private readonly producer: KafkaProducer;
  private readonly ownsProducer: boolean;
  private running: RunningConsumer[] = [];
  private state: 'idle' | 'listening' | 'closed' = 'idle';

  constructor(private readonly options: KafkaBatchTransportOptions) {
    super();
    this.log = options.logger ?? silentKafkaLogger;
    this.ownsProducer = !options.producer;
    this.producer = options.producer ?? new KafkaProducer(options.kafka);
  }

  listen(callback: (error?: unknown) => void): void {
    try {
      if (this.state !== 'idle') throw new Error(`KafkaBatchTransport cannot listen when ${this.state}`);
      const specs = resolveKafkaConsumers(this.getHandlers(), this.options);
      this.running = specs.map((spec) => this.build(spec));
    } catch (error) {
      callback(error);
      return;
    }
    this.state = 'listening';
    for (const { starting } of this.running) starting.begin();
    this.log.info({ consumers: this.running.map(({ spec }) => ({ pattern: spec.name, topic: spec.topic, extraTopics: spec.extraTopics, groupId: spec.groupId })) }, 'kafka batch transport listening');
    callback();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const { starting } of this.running) starting.stop();
    await Promise.all(
      this.running.map(({ spec, consumer }) =>
        consumer.stop().catch((error: unknown) => this.log.warn({ pattern: spec.name, err: error }, 'stopping a batch consumer failed')),
      ),
    );
    if (this.ownsProducer) await this.producer.disconnect().catch(() => undefined);
  }

  /**
   * Readiness without I/O: listening, every consumer started (or still joining in time) and not stalled. With a
   * `name` (a binding's `name`), only that consumer, so readiness can list each consumer under its own name; a
   * name no running consumer has is not ready (a controller or binding missing).
   */
  checkFlowing(name?: string): void {
    if (this.state !== 'listening') throw new NotReadyError(`Kafka batch transport is ${this.state === 'idle' ? 'not started (app.startAllMicroservices)' : 'closed'}`);
    const checked = name === undefined ? this.running : this.running.filter(({ spec }) => spec.readinessName === name);
    if (name !== undefined && checked.length === 0) throw new NotReadyError(`Kafka batch transport has no consumer named ${name}`, { consumer: name });
    for (const { starting, consumer } of checked) {
      starting.check();
      consumer.checkFlowing();
    }
  }

  /** For /health/ready: checkFlowing, then whether the cluster answers and has the topics the consumers read. */
  async health(): Promise<void> {
    this.checkFlowing();
    await kafkaHealth(this.options.kafka, { topics: this.topics() });
  }

  /**
   * The topics the running consumers are bound to, for readiness: not their extra topics (a product's own usage
   * topic, USAGE_TOPIC_NAMESPACES), whose absence must not take every pod out of service.
   */
  topics(): string[] {
    return [...new Set(this.running.map(({ spec }) => spec.topic))];
  }

  /** Per pattern (its key: the topic, or `{ topic, group }` as sorted JSON). */
  stats(): Record<string, BatchConsumerStats> {
    return Object.fromEntries(this.running.map(({ spec, consumer }) => [spec.name, consumer.stats()]));
  }

  on(): never {
    throw new Error('KafkaBatchTransport has no events to subscribe to: use health() and stats()');
  }

  /** The consumers, by pattern. */
  unwrap<T>(): T {
    return new Map(this.running.map(({ spec, consumer }) => [spec.name, consumer])) as T;
  }

  private build(spec: ResolvedKafkaConsumer): RunningConsumer {
    const { options } = this;
    const handler = this.getHandlers().get(spec.name) as MessageHandler;
    const { deadLetterTopic, parse, ...tuning } = spec.settings;
    const consumer = new BatchConsumer<unknown>({
      kafka: options.kafka,
      groupId: spec.groupId,
      topics: [spec.topic, ...(spec.extraTopics ?? [])],
      pool: options.pool,
      offsetsSchema: options.offsetsSchema,
      producer: this.producer,
      deadLetterTopic: typeof deadLetterTopic === 'function' ? deadLetterTopic : () => deadLetterTopic,
      parse,
      handle: (batch) => this.invoke(handler, batch, spec.groupId),
      logger: this.log,
      maxMessagesPerTransaction: tuning.maxMessagesPerTransaction,
      partitionsConsumedConcurrently: tuning.partitionsConsumedConcurrently,
      fromBeginning: tuning.fromBeginning,
      retry: tuning.retry,
      stall: tuning.stall,
      isolateAfterFailures: tuning.isolateAfterFailures,
      passOverOtherGroupsReplays: tuning.passOverOtherGroupsReplays,
      sessionTimeoutMs: options.sessionTimeoutMs,
      rebalanceTimeoutMs: options.rebalanceTimeoutMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      maxWaitTimeMs: options.maxWaitTimeMs,
      hooks: spec.hooks,
    });
    const starting = new BackgroundStart({
      name: spec.readinessName ?? `kafka consumer ${spec.groupId} (${spec.topic})`,
      start: () => consumer.start(),
      logger: this.log,
      slowAfterMs: options.slowStartAfterMs,
      retryMinMs: options.startRetryMinMs,
      retryMaxMs: options.startRetryMaxMs,
    });
    return { spec, consumer, starting };
  }

  /**
   * Calls the controller method through Nest (guards, interceptors, pipes, filters) and rethrows what it threw,
   * so the BatchConsumer can tell a ContractViolation (dead-letter) from a transient failure (roll back, retry).
   */
  private async invoke(handler: MessageHandler, batch: HandlerBatch<unknown>, groupId: string): Promise<void> {
    const context = new KafkaBatchContext([batch.topic, batch.partition, groupId]);
    const result: unknown = await handler(batch, context);
    if (!isObservable(result)) return;
    try {
      await lastValueFrom(result, { defaultValue: undefined });
    } catch (error) {
      if (error instanceof Error) throw error;
      // Nest's default RPC filter replaces the error with { status, message }: retried as transient, never dropped.
      throw new Error(`Kafka batch handler failed (${JSON.stringify(error)}); use @KafkaBatchHandler to keep the original error`);
    }
  }
}

import { resolve } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { withAdmin } from '@tally/kafka';
import { parseMessage, Topics, type CycleStartedV1, type Envelope, type PlanChangedV1 } from '@tally/contracts';
import { bootstrapHttpApp, hashApiKey, loadConfig, type Clock } from '@tally/shared';
import { freePort, TEST_RATE_LIMITS, testDatabaseUrl, testKafkaBrokers, uniqueSuffix, waitFor } from '@tally/testing';
import { SubscriptionCycleConfig } from '../src/config/subscription-cycle.config';
import { createSubscriptionCycleModule } from '../src/subscription-cycle.module';
import { SUBSCRIPTION_CYCLE_STATUS_BY_CODE } from '../src/subscription-cycle.errors';

export const WRITER_KEY = 'sc-test-writer';
export const READER_KEY = 'sc-test-reader';

/** A clock the test moves: a year of billing cycles runs in seconds. */
export interface TestApp {
  app: INestApplication;
  baseUrl: string;
  config: SubscriptionCycleConfig;
}

export async function startApp(options: { schema: string; topic: string; clock: Clock; env?: Record<string, string> }): Promise<TestApp> {
  const port = await freePort();
  const config = loadConfig(SubscriptionCycleConfig, {
    ...TEST_RATE_LIMITS,
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    PORT: String(port),
    DATABASE_URL: testDatabaseUrl(),
    DATABASE_SCHEMA: options.schema,
    KAFKA_BROKERS: testKafkaBrokers().join(','),
    KAFKA_CLIENT_ID: `subscription-cycle-test-${uniqueSuffix()}`,
    SUBSCRIPTION_EVENTS_TOPIC: options.topic,
    PLANS_PATH: resolve(__dirname, '../../../config/plans.yaml'),
    SCHEDULER_INTERVAL_MS: '25',
    OUTBOX_INTERVAL_MS: '25',
    API_KEYS: JSON.stringify([
      { name: 'writer', sha256: hashApiKey(WRITER_KEY), scopes: ['accounts:read', 'subscriptions:write'] },
      { name: 'reader', sha256: hashApiKey(READER_KEY), scopes: ['accounts:read'] },
    ]),
    ...options.env,
  });
  const app = await bootstrapHttpApp(createSubscriptionCycleModule({ config, clock: options.clock }), {
    service: 'subscription-cycle',
    title: 'subscription-cycle (test)',
    config,
    statusByCode: SUBSCRIPTION_CYCLE_STATUS_BY_CODE,
    host: '127.0.0.1',
  });
  return { app, baseUrl: `http://127.0.0.1:${port}`, config };
}

export interface HttpResult {
  status: number;
  body: Record<string, unknown>;
  /** The response's headers, names in lower case. */
  headers: Record<string, string>;
}

export async function http(baseUrl: string, method: string, path: string, body?: unknown, key = WRITER_KEY, headers: Record<string, string> = {}): Promise<HttpResult> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: Object.fromEntries(response.headers) };
}

/** A published envelope, with its partition and its Kafka headers (trace context, request id). */
export type PublishedEnvelope = Envelope<CycleStartedV1 | PlanChangedV1> & { partition: number; headers: Record<string, string> };

/** Reads the test's subscription events topic from the beginning, validating every message against the contract. */
export class PublishedMessages {
  readonly all: PublishedEnvelope[] = [];
  /** Highest offset read per partition. */
  private readonly read = new Map<number, bigint>();
  private constructor(
    private readonly consumer: Consumer,
    private readonly kafka: Kafka,
    private readonly topic: string,
  ) {}

  static async start(topic: string): Promise<PublishedMessages> {
    const kafka = new Kafka({ clientId: `sc-test-consumer-${uniqueSuffix()}`, brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `sc-test-${uniqueSuffix()}` });
    const messages = new PublishedMessages(consumer, kafka, topic);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        // Validated with the production parser of subscription.events.v1 (the test topic only renames it).
        const { envelope } = parseMessage(Topics.subscriptionEvents, message.value);
        if (message.key?.toString() !== envelope.accountId) throw new Error(`message ${envelope.id} not keyed by its account`);
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([name, value]) => [name, String(value)]));
        messages.all.push({ ...(envelope as Envelope<CycleStartedV1 | PlanChangedV1>), partition, headers });
        messages.read.set(partition, BigInt(message.offset));
      },
    });
    return messages;
  }

  of(accountId: string, type?: 'CycleStarted' | 'PlanChanged'): PublishedEnvelope[] {
    return this.all.filter((m) => m.accountId === accountId && (type === undefined || m.type === type));
  }

  cycles(accountId: string): CycleStartedV1[] {
    return this.of(accountId, 'CycleStarted').map((m) => m.data as CycleStartedV1);
  }

  /** Waits until `accountId` has exactly `count` CycleStarted messages (and returns them). */
  async waitForCycles(accountId: string, count: number, timeoutMs = 20_000): Promise<CycleStartedV1[]> {
    await waitFor(() => this.cycles(accountId).length >= count, timeoutMs);
    const cycles = this.cycles(accountId);
    expect(cycles).toHaveLength(count);
    return cycles;
  }

  /**
   * The sentinel that replaces "sleep, then expect nothing more": resolves once every message the topic holds now
   * (its high watermark per partition) has been read, so counts checked afterwards are final for what was published.
   */
  async caughtUp(timeoutMs = 20_000): Promise<void> {
    const ends = await withAdmin(this.kafka, (admin) => admin.fetchTopicOffsets(this.topic));
    await waitFor(() => ends.every(({ partition, high }) => BigInt(high) === 0n || (this.read.get(partition) ?? -1n) >= BigInt(high) - 1n), timeoutMs);
  }

  stop(): Promise<void> {
    return this.consumer.disconnect();
  }
}


export const testTopic = (): string => `subscription.events.test.${uniqueSuffix()}`;

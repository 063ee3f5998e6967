import { Controller, Get, Inject, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { KafkaMessage } from 'kafkajs';
import { Pool } from 'pg';
import { ContractViolation, type ParsedMessage } from '@tally/contracts';
import { NotReadyError } from '@tally/shared';
import {
  DeadLetterHeaders, KafkaBatchHandler, KafkaBatchTransport, KafkaProducer, createKafkaClient, ensureOffsetsTable, ensureTopics,
  quoteSchema, readStoredOffsets, withAdmin, type KafkaBatch, type KafkaBatchTransportOptions,
} from '../src';
import {
  countApplied, createAppliedTable, deleteKafkaResources, highWatermarks, insertApplied, parseUsage, readMessages, uniqueSuffix,
  usageEnvelope, waitFor,
} from './kafka.harness';

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tally_test';
const header = (message: KafkaMessage | undefined, name: string): string | undefined => message?.headers?.[name]?.toString();

const suffix = uniqueSuffix();
const schema = `kafka_transport_it_${suffix}`;
const kafka = createKafkaClient({ clientId: `kafka-transport-it-${suffix}`, brokers });
const pool = new Pool({ connectionString: databaseUrl, max: 6 });
const producer = new KafkaProducer(kafka);
/** Per run: the contract names the controller declares are bound to these topics and groups, as config would. */
const usage = { topic: `it.transport.usage.${suffix}`, dlq: `it.transport.usage.${suffix}.dlq`, group: `it-transport-usage-${suffix}` };
const flaky = { topic: `it.transport.flaky.${suffix}`, group: `it-transport-flaky-${suffix}` };

/** What the tests steer in the controller. */
const probe = { failFlaky: false, holdUsage: undefined as undefined | { entered: () => void; release: Promise<void> }, afterCommits: 0 };

const SCHEMA = Symbol('SCHEMA');

@Controller('probe')
class ProbeHttpController {
  @Get()
  ok(): { ok: true } {
    return { ok: true };
  }
}

/** A service's Kafka handlers as a Nest controller: one method per topic, each given a batch and its transaction. */
@Controller()
class ProbeKafkaController {
  constructor(@Inject(SCHEMA) private readonly schema: string) {}

  @KafkaBatchHandler('probe.usage.v1', { parse: parseUsage, maxMessagesPerTransaction: 50 })
  async applyUsage({ topic, partition, messages, tx, afterCommit }: KafkaBatch<ParsedMessage>): Promise<void> {
    if (probe.holdUsage) {
      const { entered, release } = probe.holdUsage;
      entered();
      await release;
    }
    // Blames the batch's content: the consumer isolates the message and dead-letters it alone.
    if (messages.some((m) => m.value.envelope.accountId === 'refused')) {
      throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'accountId', reason: 'is refused by this handler' }]);
    }
    await insertApplied(tx, this.schema, topic, partition, messages);
    afterCommit(() => {
      probe.afterCommits += 1;
    });
  }

  @KafkaBatchHandler('probe.flaky.v1', { parse: parseUsage, retry: { retries: 1_000, minTimeoutMs: 50, maxTimeoutMs: 100 }, stall: { afterAttempts: 3 } })
  async applyFlaky({ topic, partition, messages, tx }: KafkaBatch<ParsedMessage>): Promise<void> {
    await insertApplied(tx, this.schema, topic, partition, messages);
    if (probe.failFlaky) throw new Error('database hiccup that lasts');
  }
}

@Module({ controllers: [ProbeHttpController, ProbeKafkaController], providers: [{ provide: SCHEMA, useValue: schema }] })
class ProbeModule {}

const transportOptions = (): KafkaBatchTransportOptions => ({
  kafka,
  pool,
  offsetsSchema: schema,
  bindings: {
    'probe.usage.v1': { topic: usage.topic, groupId: usage.group, deadLetterTopic: usage.dlq },
    'probe.flaky.v1': { topic: flaky.topic, groupId: flaky.group },
  },
  sessionTimeoutMs: 6_000,
  rebalanceTimeoutMs: 10_000,
});

/** The way a service boots: HTTP app, the transport connected as a Nest microservice, started, then listening. */
async function bootApp(): Promise<{ app: INestApplication; transport: KafkaBatchTransport; url: string }> {
  const app = await NestFactory.create(ProbeModule, new FastifyAdapter(), { logger: false, abortOnError: false });
  const transport = new KafkaBatchTransport(transportOptions());
  app.connectMicroservice({ strategy: transport });
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  return { app, transport, url: await app.getUrl() };
}

const apps: INestApplication[] = [];
async function boot() {
  const booted = await bootApp();
  apps.push(booted.app);
  return booted;
}

async function expectOffsetsStoredUpToHighWatermark(groupId: string, topic: string): Promise<void> {
  const high = await highWatermarks(kafka, topic);
  const stored = await readStoredOffsets(pool, schema, groupId, topic);
  for (const [partition, next] of high) if (next > 0) expect(stored.get(partition)).toBe(BigInt(next - 1));
}

beforeAll(async () => {
  await ensureOffsetsTable(pool, schema);
  await createAppliedTable(pool, schema);
  await ensureTopics(kafka, [usage.topic, usage.dlq], 2);
  await ensureTopics(kafka, [flaky.topic], 1);
  await producer.connect();
});

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close().catch(() => undefined)));
});

afterAll(async () => {
  await producer.disconnect();
  await deleteKafkaResources(kafka, [usage.topic, usage.dlq, flaky.topic], [usage.group, flaky.group]);
  await pool.query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
  await pool.end();
});

describe('KafkaBatchTransport: a Nest controller consuming through libs/kafka BatchConsumer', () => {
  it('serves HTTP at once, applies every message exactly once with offsets in PostgreSQL, and dead-letters poison without blocking', async () => {
    const { transport, url } = await boot();
    // The HTTP controller beside the Kafka one answers whether or not the group has been joined yet.
    expect(await (await fetch(`${url}/probe`)).json()).toEqual({ ok: true });

    const valid = Array.from({ length: 20 }, (_, i) => usageEnvelope(`ok-${i}`, `acct-${i % 4}`));
    await producer.send(usage.topic, [{ key: 'acct-0', value: 'not json {' }]);
    await producer.sendEnvelopes(usage.topic, [...valid.slice(0, 10), usageEnvelope('refused-1', 'refused'), ...valid.slice(10)]);

    await waitFor(async () => (await countApplied(pool, schema, usage.topic)).rows >= valid.length, 30_000, 'valid rows');
    const dead = await readMessages(kafka, usage.dlq, 2);
    const reasons = dead.map((m) => [header(m, DeadLetterHeaders.reason), header(m, DeadLetterHeaders.consumerGroup)]).sort();
    expect(reasons).toEqual([['INVALID_JSON', usage.group], ['INVALID_PAYLOAD', usage.group]]);
    expect(dead.map((m) => m.value?.toString()).some((value) => value?.includes('refused-1'))).toBe(true);

    await waitFor(async () => transport.stats()['probe.usage.v1'].applied + transport.stats()['probe.usage.v1'].deadLettered >= valid.length + 2, 10_000, 'all counted');
    expect(await countApplied(pool, schema, usage.topic)).toEqual({ rows: valid.length, distinct: valid.length });
    await expectOffsetsStoredUpToHighWatermark(usage.group, usage.topic);
    expect(transport.stats()['probe.usage.v1']).toMatchObject({ applied: valid.length, deadLettered: 2 });
    expect(probe.afterCommits).toBeGreaterThan(0);
    await expect(transport.health()).resolves.toBeUndefined();
  });

  it('after a restart with Kafka rewound to the start, redelivered messages are skipped by the offsets in PostgreSQL', async () => {
    // Kafka's own committed offsets rewound: everything comes back, and nothing may apply twice.
    await withAdmin(kafka, (admin) => admin.resetOffsets({ groupId: usage.group, topic: usage.topic, earliest: true }));
    const before = await countApplied(pool, schema, usage.topic);
    const { transport } = await boot();
    await producer.sendEnvelopes(usage.topic, [usageEnvelope('sentinel-1', 'acct-9')]);

    await waitFor(async () => (await countApplied(pool, schema, usage.topic)).rows >= before.rows + 1, 30_000, 'sentinel row');
    expect(await countApplied(pool, schema, usage.topic)).toEqual({ rows: before.rows + 1, distinct: before.rows + 1 });
    expect(transport.stats()['probe.usage.v1'].skippedRedeliveries).toBeGreaterThanOrEqual(before.rows);
    await expectOffsetsStoredUpToHighWatermark(usage.group, usage.topic);
  });

  it('shows a partition that keeps failing in readiness, then recovers without skipping the batch', async () => {
    probe.failFlaky = true;
    const { transport } = await boot();
    await producer.sendEnvelopes(flaky.topic, [usageEnvelope('flaky-1', 'acct-f')]);

    await waitFor(async () => {
      try {
        transport.checkFlowing();
        return false;
      } catch (error) {
        return error instanceof NotReadyError && /stalled on .*flaky.*\[0\]@0/.test(error.message);
      }
    }, 30_000, 'stall reported');
    await expect(transport.health()).rejects.toThrow(NotReadyError);
    expect(await countApplied(pool, schema, flaky.topic)).toEqual({ rows: 0, distinct: 0 });

    probe.failFlaky = false;
    await waitFor(async () => (await countApplied(pool, schema, flaky.topic)).rows >= 1, 30_000, 'flaky row');
    await waitFor(async () => transport.health().then(() => true, () => false), 10_000, 'ready again');
    expect(await countApplied(pool, schema, flaky.topic)).toEqual({ rows: 1, distinct: 1 });
  });

  it('closes gracefully: the batch in flight commits, then the groups are left', async () => {
    let entered!: () => void;
    const inFlight = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    probe.holdUsage = { entered: () => entered(), release: new Promise<void>((resolve) => (release = resolve)) };
    const { app, transport } = await boot();
    const before = await countApplied(pool, schema, usage.topic);
    await producer.sendEnvelopes(usage.topic, [usageEnvelope('in-flight-1', 'acct-0')]);
    await inFlight;

    const closing = app.close();
    setTimeout(() => release(), 500);
    await closing;
    probe.holdUsage = undefined;
    apps.splice(apps.indexOf(app), 1);

    expect(await countApplied(pool, schema, usage.topic)).toEqual({ rows: before.rows + 1, distinct: before.rows + 1 });
    await expectOffsetsStoredUpToHighWatermark(usage.group, usage.topic);
    const [group] = (await withAdmin(kafka, (admin) => admin.describeGroups([usage.group]))).groups;
    expect(group.members).toHaveLength(0);
    expect(() => transport.checkFlowing()).toThrow(/closed/);
  });
});

import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, type MessageHandler } from '@nestjs/microservices';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Pool } from 'pg';
import { isObservable, lastValueFrom } from 'rxjs';
import { ContractViolation } from '@tally/contracts';
import { NotReadyError } from '@tally/shared';
import { KafkaBatchHandler } from './kafka-batch-handler.decorator';
import { KafkaBatchTransport, parseKafkaBatchPattern, resolveKafkaConsumers, type KafkaBatch } from './kafka-batch.transport';

const parse = (_topic: string, message: KafkaMessage) => JSON.parse(String(message.value)) as unknown;
const eventHandler = (extras: Record<string, unknown> = {}, more: Partial<MessageHandler> = {}) =>
  Object.assign(async () => undefined, { isEventHandler: true, extras, ...more }) as MessageHandler;

describe('parseKafkaBatchPattern', () => {
  it('reads a topic, or { topic, group } as Nest keys it (sorted JSON)', () => {
    expect(parseKafkaBatchPattern('ledger.events.v1')).toEqual({ topic: 'ledger.events.v1' });
    expect(parseKafkaBatchPattern('{"group":"g","topic":"t"}')).toEqual({ topic: 't', group: 'g' });
  });

  it('refuses an object pattern without a topic', () => {
    expect(() => parseKafkaBatchPattern('{"cmd":"x"}')).toThrow(/topic or \{ topic, group\? \}/);
    expect(() => parseKafkaBatchPattern('{not json')).toThrow(/topic or \{ topic, group\? \}/);
  });
});

describe('resolveKafkaConsumers', () => {
  it('layers transport defaults < handler extras < binding, and names the topic and group config decides', () => {
    const handlers = new Map([['ledger.events.v1', eventHandler({ parse, deadLetterTopic: 'dlq.a', maxMessagesPerTransaction: 100, partitionsConsumedConcurrently: 2 })]]);
    const [consumer] = resolveKafkaConsumers(handlers, {
      groupId: 'default-group',
      defaults: { maxMessagesPerTransaction: 500, fromBeginning: true },
      bindings: { 'ledger.events.v1': { topic: 'test.topic', groupId: 'configured', deadLetterTopic: 'dlq.b' } },
    });
    expect(consumer).toMatchObject({ name: 'ledger.events.v1', topic: 'test.topic', groupId: 'configured' });
    expect(consumer.settings).toMatchObject({ parse, deadLetterTopic: 'dlq.b', maxMessagesPerTransaction: 100, partitionsConsumedConcurrently: 2, fromBeginning: true });
  });

  it("consumes a binding's extra topics with its topic, in the same group (the ledger's per-product usage topics)", () => {
    const handlers = new Map([['usage.events.v1', eventHandler({ parse })]]);
    const [consumer] = resolveKafkaConsumers(handlers, { bindings: { 'usage.events.v1': { groupId: 'g', extraTopics: ['usage.events.chat.v1'] } } });
    expect(consumer).toMatchObject({ topic: 'usage.events.v1', extraTopics: ['usage.events.chat.v1'], groupId: 'g' });
    const [plain] = resolveKafkaConsumers(handlers, { bindings: { 'usage.events.v1': { groupId: 'g', extraTopics: [] } } });
    expect(plain).not.toHaveProperty('extraTopics');
  });

  it('names a consumer for readiness by its binding, and only when the binding names it', () => {
    const handlers = new Map([['a', eventHandler({ parse })], ['b', eventHandler({ parse })]]);
    const consumers = resolveKafkaConsumers(handlers, { bindings: { a: { name: 'a-consumer', groupId: 'ga' }, b: { groupId: 'gb' } } });
    expect(consumers.map(({ name, readinessName }) => [name, readinessName])).toEqual([['a', 'a-consumer'], ['b', undefined]]);
    expect(consumers[0].settings).not.toHaveProperty('name');
  });

  it('takes the group from the pattern, then the handler, then the transport', () => {
    const handlers = new Map([
      ['{"group":"from-pattern","topic":"a"}', eventHandler({ parse, group: 'from-handler' })],
      ['b', eventHandler({ parse, group: 'from-handler' })],
      ['c', eventHandler({ parse })],
    ]);
    const groups = resolveKafkaConsumers(handlers, { groupId: 'from-transport' }).map(({ topic, groupId }) => [topic, groupId]);
    expect(groups).toEqual([['a', 'from-pattern'], ['b', 'from-handler'], ['c', 'from-transport']]);
  });

  it('builds no consumer for a pattern this process does not consume', () => {
    const handlers = new Map([['a', eventHandler({ parse, group: 'ga' })], ['{"group":"gb","topic":"b"}', eventHandler({ parse })]]);
    expect(resolveKafkaConsumers(handlers, { consumes: ({ topic }) => topic === 'b' }).map(({ name }) => name)).toEqual(['{"group":"gb","topic":"b"}']);
  });

  it('refuses what cannot be consumed safely: no group, no parser, two handlers or two patterns in one group, a message pattern', () => {
    expect(() => resolveKafkaConsumers(new Map([['a', eventHandler({ parse })]]), {})).toThrow(/a: no consumer group/);
    expect(() => resolveKafkaConsumers(new Map([['a', eventHandler({})]]), { groupId: 'g' })).toThrow(/a: no parse/);
    expect(() => resolveKafkaConsumers(new Map([['a', eventHandler({ parse }, { next: async () => undefined })]]), { groupId: 'g' })).toThrow(/several handlers/);
    expect(() => resolveKafkaConsumers(new Map([['a', eventHandler({ parse })], ['b', eventHandler({ parse })]]), { groupId: 'g' })).toThrow(/a and b share consumer group g/);
    expect(() => resolveKafkaConsumers(new Map([['a', eventHandler({ parse }, { isEventHandler: false })]]), { groupId: 'g' })).toThrow(/use @EventPattern/);
  });
});

@Controller()
class ProbeController {
  readonly seen: KafkaBatch<unknown>[] = [];

  @KafkaBatchHandler('probe.v1', { parse, group: 'probe-group', deadLetterTopic: 'probe.dlq.v1' })
  async apply(batch: KafkaBatch<unknown>): Promise<void> {
    this.seen.push(batch);
    if (batch.partition === 7) throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'x', reason: 'refused' }]);
  }

  @KafkaBatchHandler({ topic: 'probe.v1', group: 'second-group' }, { parse })
  async applyAgain(batch: KafkaBatch<unknown>): Promise<void> {
    this.seen.push(batch);
  }

  @EventPattern('plain.v1')
  async plain(): Promise<void> {
    throw new Error('hidden by the default filter');
  }
}

@Module({ controllers: [ProbeController] })
class ProbeModule {}

describe('KafkaBatchTransport with Nest (no broker: handlers registered, not consumed)', () => {
  let app: INestMicroservice;
  let transport: KafkaBatchTransport;

  beforeAll(async () => {
    const kafka = { consumer: () => ({}), producer: () => ({}) } as unknown as Kafka;
    transport = new KafkaBatchTransport({ kafka, pool: {} as Pool, offsetsSchema: 'test' });
    app = await NestFactory.createMicroservice(ProbeModule, { strategy: transport, logger: false, abortOnError: false });
    await app.init();
  });

  afterAll(() => app.close());

  it('registers each @KafkaBatchHandler with its settings as extras, keyed by topic or { topic, group }', () => {
    const consumers = resolveKafkaConsumers(transport.getHandlers(), { groupId: 'unused', defaults: { parse } });
    expect(consumers.map(({ name, topic, groupId, settings }) => ({ name, topic, groupId, deadLetterTopic: settings.deadLetterTopic }))).toEqual([
      { name: 'probe.v1', topic: 'probe.v1', groupId: 'probe-group', deadLetterTopic: 'probe.dlq.v1' },
      { name: '{"group":"second-group","topic":"probe.v1"}', topic: 'probe.v1', groupId: 'second-group', deadLetterTopic: undefined },
      { name: 'plain.v1', topic: 'plain.v1', groupId: 'unused', deadLetterTopic: undefined },
    ]);
  });

  it('hands the batch to the method as is, and its ContractViolation back whole (the consumer dead-letters on it)', async () => {
    const handler = transport.getHandlerByPattern('probe.v1') as MessageHandler;
    const batch = { topic: 'probe.v1', partition: 0, messages: [], tx: {}, deadLetter: () => undefined, afterCommit: () => undefined };
    await expect(handler(batch)).resolves.toBeUndefined();
    expect(app.get(ProbeController).seen[0]).toBe(batch);

    const refused = await handler({ ...batch, partition: 7 });
    expect(isObservable(refused)).toBe(true);
    await expect(lastValueFrom(refused as never)).rejects.toBeInstanceOf(ContractViolation);
  });

  it('is not ready before it listens', () => {
    expect(() => transport.checkFlowing()).toThrow(NotReadyError);
    expect(() => transport.checkFlowing()).toThrow(/not started/);
  });
});

describe('KafkaBatchTransport readiness by consumer name', () => {
  it('while listening, is not ready for a name no running consumer has (a missing controller or binding)', async () => {
    const kafka = { consumer: () => ({}), producer: () => ({}) } as unknown as Kafka;
    const transport = new KafkaBatchTransport({ kafka, pool: {} as Pool, offsetsSchema: 'test', producer: {} as never });
    expect(() => transport.checkFlowing('usage-consumer')).toThrow(/not started/);
    await new Promise<void>((resolve, reject) => transport.listen((error) => (error ? reject(error as Error) : resolve())));
    expect(() => transport.checkFlowing()).not.toThrow();
    expect(() => transport.checkFlowing('usage-consumer')).toThrow(NotReadyError);
    expect(() => transport.checkFlowing('usage-consumer')).toThrow(/no consumer named usage-consumer/);
    await transport.close();
    expect(() => transport.checkFlowing()).toThrow(/closed/);
  });
});

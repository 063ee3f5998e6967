import { plainToInstance, type ClassConstructor } from 'class-transformer';
import { validateSync } from 'class-validator';
import { Envelope, LEDGER_EVENTS, Topics, UsageRecordedV1, findUnsafeJson, parseMessage, type TopicName } from '@tally/contracts';
import { Murmur2Partitioner } from '@tally/kafka';
import { Partitioners } from 'kafkajs';
import { performance } from './bench.harness';

/**
 * The parse every consumer runs per message (JSON → validated envelope and payload instances), measured in-process on
 * one core: Tally's `parseMessage` (compiled validation paths, libs/contracts) next to the same work done by
 * class-transformer's plainToInstance and class-validator's validateSync, which is what parseMessage did before
 * (the peer of this figure, measured in the same run).
 */
export interface ParsingResult {
  message: string;
  compiledMicros: number;
  classValidatorMicros: number;
}

const T = '2026-11-21T10:00:00.000Z';
const share = { bucketId: 'allowance:c-1', kind: 'allowance', amount: '1.5' };
const SAMPLES: { message: string; topic: TopicName; cls: ClassConstructor<object>; raw: string }[] = [
  {
    message: 'ledger event UsageDebited v2 (projector, notification)',
    topic: Topics.ledgerEvents,
    cls: LEDGER_EVENTS.UsageDebited.cls,
    raw: JSON.stringify({
      id: 'e-1', type: 'UsageDebited', version: 2, accountId: 'acc-1', occurredAt: T, streamVersion: 3, actor: 'svc',
      balanceAfter: {
        available: '10', allowance: '5', promotional: '3', purchased: '2', held: '0', overdraft: '0', allocation: '100', usedThisCycle: '90',
        cycleId: 'c-1', cycleEnd: T, planId: 'pro', unlimited: false,
      },
      data: {
        usageId: 'u-1', amount: '1.5', perBucket: [share], overdraft: '0', feature: 'chat', models: ['gpt-4o'], occurredAt: T, debitedAt: T, metadata: { project: 'p' },
        pricing: { rateCardVersion: '2026-01', lines: [{ model: 'gpt-4o', feature: 'chat', amount: '1.5', inputTokens: 1200, outputTokens: 300 }] },
      },
    }),
  },
  {
    message: 'usage event UsageRecorded v1 (ledger commands)',
    topic: Topics.usageEvents,
    cls: UsageRecordedV1,
    raw: JSON.stringify({
      id: 'u-1', type: 'UsageRecorded', version: 1, accountId: 'acc-1', occurredAt: T,
      data: { feature: 'chat', model: 'gpt-4o', inputTokens: 1200, outputTokens: 300, metadata: { project: 'p' } },
    }),
  },
];

const OPTIONS = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true } as const;

/** What parseMessage did before the compiled paths: class-transformer and class-validator on the envelope and the data. */
function classValidatorParse(cls: ClassConstructor<object>, raw: string): object {
  const json = JSON.parse(raw) as { data: object };
  if (findUnsafeJson(json)) throw new Error('unsafe');
  const envelope = plainToInstance(Envelope, json, { enableImplicitConversion: false });
  if (validateSync(envelope, OPTIONS).length > 0) throw new Error('invalid envelope');
  if (findUnsafeJson(json.data)) throw new Error('unsafe');
  const data = plainToInstance(cls, json.data, { enableImplicitConversion: false });
  if (validateSync(data, OPTIONS).length > 0) throw new Error('invalid data');
  return data;
}

/** Microseconds per call, after a warm-up, over a fixed number of calls. */
function microsPerCall(fn: () => unknown, calls = 50_000): number {
  for (let i = 0; i < 10_000; i += 1) fn();
  const start = performance.now();
  for (let i = 0; i < calls; i += 1) fn();
  return ((performance.now() - start) * 1000) / calls;
}

export function measureParsing(): ParsingResult[] {
  return SAMPLES.map(({ message, topic, cls, raw }) => ({
    message,
    compiledMicros: microsPerCall(() => parseMessage(topic, raw)),
    classValidatorMicros: microsPerCall(() => classValidatorParse(cls, raw)),
  }));
}

export interface PartitioningResult {
  tallyMicros: number;
  kafkajsMicros: number;
}

/**
 * Choosing a keyed message's partition (murmur2 of the account id), which the relay does twice per event (KafkaProducer
 * sizes its chunks per partition, then kafkajs groups the messages): Tally's Murmur2Partitioner next to kafkajs's
 * DefaultPartitioner, the same function computed with Long objects (a unit test holds their answers equal).
 */
export function measurePartitioning(): PartitioningResult {
  const partitionMetadata = Array.from({ length: 6 }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0] }));
  const keys = Array.from({ length: 1_000 }, (_, i) => `acct-${i}`);
  const time = (partitioner: ReturnType<typeof Murmur2Partitioner>) => {
    let i = 0;
    return microsPerCall(() => partitioner({ topic: 'ledger.events.v1', partitionMetadata, message: { key: keys[i++ % keys.length], value: null } }), 200_000);
  };
  return { tallyMicros: time(Murmur2Partitioner()), kafkajsMicros: time(Partitioners.DefaultPartitioner()) };
}

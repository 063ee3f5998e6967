import type { ClassConstructor } from 'class-transformer';
import { ContractViolation } from './contract-violation';
import { Envelope } from './envelope';
import { LEDGER_EVENT_CLASSES } from './messages/ledger-events.v1';
import { CycleStartedV1, PlanChangedV1 } from './messages/subscription-events.v1';
import { UsageRecordedV1 } from './messages/usage-recorded.v1';
import { Topics, type TopicName } from './topics';
import { validateInto } from './validation';

/** `${type}@${version}` → payload class, per topic. Unknown pairs are refused (dead-lettered by consumers). */
export type MessageRegistry = ReadonlyMap<string, ClassConstructor<object>>;

const key = (type: string, version: number) => `${type}@${version}`;

export const MESSAGE_REGISTRIES: Partial<Record<TopicName, MessageRegistry>> = {
  [Topics.usageEvents]: new Map([[key('UsageRecorded', 1), UsageRecordedV1]]),
  [Topics.subscriptionEvents]: new Map<string, ClassConstructor<object>>([
    [key('CycleStarted', 1), CycleStartedV1],
    [key('PlanChanged', 1), PlanChangedV1],
  ]),
  [Topics.ledgerEvents]: new Map<string, ClassConstructor<object>>(
    Object.entries(LEDGER_EVENT_CLASSES).map(([type, cls]) => [key(type, 1), cls as ClassConstructor<object>]),
  ),
};

export interface ParsedMessage<TData extends object = object> {
  envelope: Envelope<TData>;
  data: TData;
}

/**
 * Parses raw Kafka bytes into a validated envelope and payload class instance.
 * Throws ContractViolation naming the field and the reason; never returns half-valid data.
 */
export function parseMessage(topic: TopicName, raw: Buffer | string | null): ParsedMessage {
  let json: unknown;
  try {
    json = JSON.parse(raw === null ? '' : raw.toString());
  } catch {
    throw new ContractViolation('INVALID_JSON', [{ field: '(message)', reason: 'is not valid JSON' }]);
  }
  const envelope = validateInto(Envelope, json, 'INVALID_ENVELOPE') as Envelope<Record<string, unknown>>;
  const cls = MESSAGE_REGISTRIES[topic]?.get(key(envelope.type, envelope.version));
  if (!cls) {
    throw new ContractViolation('UNKNOWN_MESSAGE_TYPE', [
      { field: 'type', reason: `${envelope.type} v${envelope.version} is not a known message on ${topic}` },
    ]);
  }
  const data = validateInto(cls, (json as { data: unknown }).data, 'INVALID_PAYLOAD', 'data');
  return { envelope: Object.assign(envelope, { data }), data };
}

/** Serialises an envelope for Kafka (amounts inside `data` must already be decimal strings). */
export function serializeEnvelope(envelope: { id: string; type: string; version: number; accountId: string; occurredAt: string; data: object; streamVersion?: number; balanceAfter?: object }): Buffer {
  return Buffer.from(JSON.stringify(envelope));
}

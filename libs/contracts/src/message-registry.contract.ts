import { ContractViolation } from './contract.errors';
import { Envelope } from './envelope.contract';
import { classOf, upcastToCurrent, versions, type CurrentOf, type MessageVersions } from './message-versions.contract';
import { LEDGER_EVENTS } from './messages/ledger-events.contract';
import { CycleStartedV1, PlanChangedV1 } from './messages/subscription-events.v1.contract';
import { UsageRecordedV1 } from './messages/usage-recorded.v1.contract';
import { Topics, type TopicName } from './topics.contract';
import { validateInto } from './validation.parser';

/**
 * type → versions, per topic. Unknown types or versions are refused (dead-lettered by consumers); older versions
 * are validated by their own class and upcast to the current one.
 */
export const MESSAGE_REGISTRIES = {
  [Topics.usageEvents]: { UsageRecorded: versions(1, UsageRecordedV1) },
  [Topics.subscriptionEvents]: { CycleStarted: versions(1, CycleStartedV1), PlanChanged: versions(1, PlanChangedV1) },
  [Topics.ledgerEvents]: LEDGER_EVENTS,
} as const;

/** The topics that carry a contract (dead-letter topics carry whatever failed). */
export type ContractTopic = keyof typeof MESSAGE_REGISTRIES;
type Registry<T extends ContractTopic> = (typeof MESSAGE_REGISTRIES)[T];
/** type → current payload, for one topic. */
export type TopicPayloads<T extends ContractTopic> = { [K in keyof Registry<T> & string]: CurrentOf<Registry<T>[K]> };

/** One parsed message of a known type: the envelope and its payload at the current version. */
export interface TypedMessage<TTopic extends ContractTopic, TType extends string, TData extends object> {
  topic: TTopic;
  type: TType;
  data: TData;
  /** `envelope.version` is the current version (what `data` is); `sentVersion` what the producer sent. */
  envelope: Envelope<TData> & { type: TType };
  sentVersion: number;
}

/**
 * What `parseMessage(topic, …)` returns: a union over the topic's message types, narrowed by `type` (and by `topic`
 * for a consumer that is handed messages of any topic). `ParsedMessage` alone is every message of every topic.
 */
export type ParsedMessage<T extends TopicName = TopicName> = T extends ContractTopic
  ? { [K in keyof TopicPayloads<T> & string]: TypedMessage<T, K, TopicPayloads<T>[K]> }[keyof TopicPayloads<T> & string]
  : never;

export type UsageMessage = ParsedMessage<typeof Topics.usageEvents>;
export type SubscriptionMessage = ParsedMessage<typeof Topics.subscriptionEvents>;
export type LedgerMessage = ParsedMessage<typeof Topics.ledgerEvents>;

/** The versions of `type` on `topic`, if the topic carries such a type. */
function versionsOf(topic: TopicName, type: string): MessageVersions<object> | undefined {
  if (!Object.prototype.hasOwnProperty.call(MESSAGE_REGISTRIES, topic)) return undefined;
  const registry: Record<string, MessageVersions<object>> = MESSAGE_REGISTRIES[topic as ContractTopic];
  return Object.prototype.hasOwnProperty.call(registry, type) ? registry[type] : undefined;
}

/**
 * Parses raw Kafka bytes into a validated envelope and payload class instance, upcast to the current version.
 * Throws ContractViolation naming the field and the reason; never returns half-valid data.
 */
export function parseMessage<T extends TopicName>(topic: T, raw: Buffer | string | null): ParsedMessage<T> {
  let json: unknown;
  try {
    json = JSON.parse(raw === null ? '' : raw.toString());
  } catch {
    throw new ContractViolation('INVALID_JSON', [{ field: '(message)', reason: 'is not valid JSON' }]);
  }
  const envelope = validateInto(Envelope, json, 'INVALID_ENVELOPE') as Envelope<object>;
  const message = versionsOf(topic, envelope.type);
  const cls = message && classOf(message, envelope.version);
  if (!message || !cls) {
    throw new ContractViolation('UNKNOWN_MESSAGE_TYPE', [
      { field: 'type', reason: `${envelope.type} v${envelope.version} is not a known message on ${topic}` },
    ]);
  }
  const sentVersion = envelope.version;
  // The envelope's check covered `data` (findUnsafeJson walks the whole message).
  const data = upcastToCurrent(message, sentVersion, validateInto(cls, (json as { data: unknown }).data, 'INVALID_PAYLOAD', 'data', { checkedSafe: true }));
  Object.assign(envelope, { data, version: message.version });
  // The registry is the type map: the type and class were looked up in it, so the result is the union member.
  return { topic, type: envelope.type, data, envelope, sentVersion } as unknown as ParsedMessage<T>;
}

/** Serialises an envelope for Kafka (amounts inside `data` must already be decimal strings). */
export function serializeEnvelope(envelope: { id: string; type: string; version: number; accountId: string; occurredAt: string; data: object; streamVersion?: number; balanceAfter?: object }): Buffer {
  return Buffer.from(JSON.stringify(envelope));
}

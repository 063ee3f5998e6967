import { hash } from 'node:crypto';
import { LEDGER_EVENTS, isLedgerEventType, upcastToCurrent, type BalanceSnapshotV1, type EnvelopeOf, type LedgerEventData } from '@tally/contracts';
import type { NewEvent, RecordedEvent, RecordedEventJson } from '@tally/event-store';
import type { AccountEvent, BalanceView } from '@tally/ledger-domain';
import { formatCredits } from '@tally/money';
import { decodeData, encodeData } from './account-event-data.codec';

/**
 * Domain events keep amounts as bigint micro-credits; stored and published events carry the contract's payload
 * at its current version (amounts as decimal credit strings), so the event store and ledger.events.v1 hold the
 * same payload. Each stored event records its payload version in its metadata (`schemaVersion`; absent = 1, what
 * the ledger wrote before versions were recorded); reading upcasts older versions to the current one, so the
 * decider folds, and the relay publishes, only the current version.
 */
export const SCHEMA_VERSION_KEY = 'schemaVersion';

export const ACCOUNT_STREAM_PREFIX = 'account-';
export const accountStreamId = (accountId: string) => `${ACCOUNT_STREAM_PREFIX}${accountId}`;
export const accountIdOfStream = (streamId: string) => streamId.slice(ACCOUNT_STREAM_PREFIX.length);

/** The payload version a stored event was written with. */
export function schemaVersionOf(metadata: Record<string, unknown> | undefined): number {
  const version = metadata?.[SCHEMA_VERSION_KEY];
  return typeof version === 'number' ? version : 1;
}

export function encodeEventData(event: AccountEvent): Record<string, unknown> {
  return { ...encodeData(event) };
}

/** The only metadata keys decodeEvent reads: what a fold asks the event store for (ReadStreamsOptions.metadataKeys). */
export const DECODE_METADATA_KEYS: readonly string[] = [SCHEMA_VERSION_KEY];

/**
 * A stored (or published) event back to the domain: upcast from the version it was written with, then decoded
 * by its type's codec. Without metadata the payload is taken as version 1 (upcasting a current payload is a no-op).
 */
export function decodeEvent(stored: { type: string; data: Record<string, unknown>; metadata?: Record<string, unknown> }): AccountEvent {
  const { type } = stored;
  if (!isLedgerEventType(type)) throw new Error(`unknown account event type ${type}`);
  // The store holds what this codec wrote (or an older version of it): typed here, not validated again.
  const current = upcastToCurrent(LEDGER_EVENTS[type], schemaVersionOf(stored.metadata), stored.data) as LedgerEventData[typeof type];
  return { type, data: decodeData(type, current) } as AccountEvent;
}

export function snapshotOf(view: BalanceView): BalanceSnapshotV1 {
  return {
    available: formatCredits(view.available),
    allowance: formatCredits(view.byKind.allowance),
    promotional: formatCredits(view.byKind.promotional),
    purchased: formatCredits(view.byKind.purchased),
    held: formatCredits(view.held),
    overdraft: formatCredits(view.overdraft),
    allocation: formatCredits(view.allocation),
    usedThisCycle: formatCredits(view.usedThisCycle),
    cycleId: view.cycleId,
    cycleEnd: view.cycleEnd,
    planId: view.planId,
    unlimited: view.unlimited,
  };
}

/**
 * Deterministic event id (UUID-shaped) from the account, the command's idempotency key and the event's index in
 * the decision: retrying a decision after a crash appends the same ids, which the event store treats as a no-op.
 */
export function eventId(accountId: string, commandKey: string, index: number): string {
  const hex = hash('sha256', `${accountId}\u0000${commandKey}\u0000${index}`, 'hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Who and what caused an event, kept in its metadata (the audit trail): `actor` is the name of the API key that sent
 * the command (an HTTP command, or usage through usage-ingest), `requestId` the request's id, and `traceparent` /
 * `tracestate` its W3C trace context, so the relay, the projection and notifications continue the same trace later.
 */
export interface EventAudit {
  actor?: string;
  requestId?: string;
  traceparent?: string;
  tracestate?: string;
}

export function toNewEvent(accountId: string, commandKey: string, index: number, event: AccountEvent, balanceAfter: BalanceSnapshotV1, audit?: EventAudit): NewEvent {
  const metadata: Record<string, unknown> = { balanceAfter, commandKey, [SCHEMA_VERSION_KEY]: LEDGER_EVENTS[event.type].version };
  if (audit) {
    if (audit.actor !== undefined) metadata.actor = audit.actor;
    if (audit.requestId !== undefined) metadata.requestId = audit.requestId;
    if (audit.traceparent !== undefined) metadata.traceparent = audit.traceparent;
    if (audit.tracestate !== undefined) metadata.tracestate = audit.tracestate;
  }
  return { id: eventId(accountId, commandKey, index), type: event.type, data: encodeEventData(event), metadata };
}

/** The actor recorded on a stored event, if any. */
export function actorOf(metadata: Readonly<Record<string, unknown>>): string | undefined {
  return typeof metadata.actor === 'string' ? metadata.actor : undefined;
}

export type LedgerEnvelope = EnvelopeOf<string, object> & { streamVersion: number; balanceAfter?: BalanceSnapshotV1 };

/**
 * The versions of a type this code reads, for an event stored at `storedVersion`: undefined for an unknown type or for
 * a version newer than this code's (appended by a newer replica during a rolling deploy), which are published as
 * stored: what the newer code publishes too. Upcasting it would throw, and the relay would publish nothing for anyone.
 */
function knownVersions(type: string, storedVersion: number) {
  const known = isLedgerEventType(type) ? LEDGER_EVENTS[type] : undefined;
  return known && storedVersion <= known.version ? known : undefined;
}

/** A stored event as published on ledger.events.v1: at the current version of its type, whatever it was stored as. */
export function toLedgerEnvelope(stored: RecordedEvent): LedgerEnvelope {
  const storedVersion = schemaVersionOf(stored.metadata);
  const known = knownVersions(stored.type, storedVersion);
  return {
    id: stored.id,
    type: stored.type,
    // An unknown type is published as stored; consumers dead-letter it (as before versions existed).
    version: known?.version ?? storedVersion,
    accountId: accountIdOfStream(stored.streamId),
    occurredAt: stored.recordedAt.toISOString(),
    streamVersion: stored.version,
    data: known ? upcastToCurrent(known, storedVersion, stored.data) : stored.data,
    balanceAfter: stored.metadata.balanceAfter as BalanceSnapshotV1 | undefined,
    ...(typeof stored.metadata.actor === 'string' && { actor: stored.metadata.actor }),
  };
}

/** The metadata keys a stored event is published from: its version and balance (the envelope) and its Kafka headers. */
export const PUBLISH_METADATA_KEYS: readonly string[] = [SCHEMA_VERSION_KEY, 'balanceAfter', 'actor', 'traceparent', 'tracestate', 'requestId'];

/**
 * `JSON.stringify(toLedgerEnvelope(event))` from the event's stored JSON texts (read with PUBLISH_METADATA_KEYS):
 * the data and the balance are spliced in as stored instead of being parsed and printed again, which was the
 * relay's largest cost per event (docs/benchmarks.md, issue 17 session 25). Parsing the result gives what
 * toLedgerEnvelope gives; spacing and key order inside `data` and `balanceAfter` are the store's. An event stored at
 * an older version of its type is upcast, through toLedgerEnvelope.
 */
export function ledgerEnvelopeJson(stored: RecordedEventJson): string {
  const { metadataJson } = stored;
  const storedVersion = metadataJson[SCHEMA_VERSION_KEY] === undefined ? 1 : schemaVersionOf({ [SCHEMA_VERSION_KEY]: JSON.parse(metadataJson[SCHEMA_VERSION_KEY]) });
  const known = knownVersions(stored.type, storedVersion);
  if (known && known.version !== storedVersion) return JSON.stringify(toLedgerEnvelope(parsedEvent(stored)));
  const { balanceAfter, actor } = metadataJson;
  return (
    `{"id":${JSON.stringify(stored.id)},"type":${JSON.stringify(stored.type)},"version":${known?.version ?? storedVersion}` +
    `,"accountId":${JSON.stringify(accountIdOfStream(stored.streamId))},"occurredAt":"${stored.recordedAt.toISOString()}"` +
    `,"streamVersion":${stored.version},"data":${stored.dataJson}` +
    (balanceAfter === undefined ? '' : `,"balanceAfter":${balanceAfter}`) +
    (actor?.startsWith('"') ? `,"actor":${actor}` : '') +
    '}'
  );
}

/** A RecordedEventJson parsed back (its metadata: the keys it was read with). */
export function parsedEvent(stored: RecordedEventJson): RecordedEvent {
  const { dataJson, metadataJson, ...rest } = stored;
  const metadata: Record<string, unknown> = {};
  for (const [key, text] of Object.entries(metadataJson)) metadata[key] = JSON.parse(text);
  return { ...rest, data: JSON.parse(dataJson) as Record<string, unknown>, metadata };
}

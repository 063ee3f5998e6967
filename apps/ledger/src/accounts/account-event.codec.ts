import { createHash } from 'node:crypto';
import type { BalanceSnapshotV1, EnvelopeOf } from '@tally/contracts';
import type { NewEvent, RecordedEvent } from '@tally/event-store';
import type { AccountEvent, BalanceView } from '@tally/ledger-domain';
import { formatCredits, parseCredits } from '@tally/money';

/**
 * Domain events keep amounts as bigint micro-credits; stored and published events carry them as decimal
 * credit strings (the wire format), so the event store and ledger.events.v1 hold the same payload.
 */
const AMOUNT_KEYS = new Set([
  'amount', 'overdraft', 'total', 'remaining', 'available', 'allocation', 'heldAmount', 'settledAmount',
  'releasedAmount', 'overdraftSettled',
]);
/** Free-form maps supplied by clients: never converted. */
const OPAQUE_KEYS = new Set(['metadata']);

export const ACCOUNT_STREAM_PREFIX = 'account-';
export const accountStreamId = (accountId: string) => `${ACCOUNT_STREAM_PREFIX}${accountId}`;
export const accountIdOfStream = (streamId: string) => streamId.slice(ACCOUNT_STREAM_PREFIX.length);

export function encodeEventData(event: AccountEvent): Record<string, unknown> {
  return JSON.parse(JSON.stringify(event.data, (_key, value) => (typeof value === 'bigint' ? formatCredits(value) : value)));
}

export function decodeEvent(stored: { type: string; data: Record<string, unknown> }): AccountEvent {
  return { type: stored.type, data: decodeAmounts(stored.data) } as AccountEvent;
}

function decodeAmounts(value: unknown, key?: string): unknown {
  if (Array.isArray(value)) return value.map((item) => decodeAmounts(item));
  if (value && typeof value === 'object') {
    if (key && OPAQUE_KEYS.has(key)) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decodeAmounts(v, k)]));
  }
  if (key && AMOUNT_KEYS.has(key) && typeof value === 'string') return parseCredits(value);
  return value;
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
  const hex = createHash('sha256').update(`${accountId}\u0000${commandKey}\u0000${index}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function toNewEvent(accountId: string, commandKey: string, index: number, event: AccountEvent, balanceAfter: BalanceSnapshotV1): NewEvent {
  return { id: eventId(accountId, commandKey, index), type: event.type, data: encodeEventData(event), metadata: { balanceAfter, commandKey } };
}

export type LedgerEnvelope = EnvelopeOf<string, Record<string, unknown>> & { streamVersion: number; balanceAfter?: BalanceSnapshotV1 };

/** A stored event as published on ledger.events.v1. */
export function toLedgerEnvelope(stored: RecordedEvent): LedgerEnvelope {
  return {
    id: stored.id,
    type: stored.type,
    version: 1,
    accountId: accountIdOfStream(stored.streamId),
    occurredAt: stored.recordedAt.toISOString(),
    streamVersion: stored.version,
    data: stored.data,
    balanceAfter: stored.metadata.balanceAfter as BalanceSnapshotV1 | undefined,
  };
}

import { hash } from 'node:crypto';
import { USAGE_RECORDED, type EnvelopeOf, type UsageRecordedV1 } from '@tally/contracts';
import type { UsageEventRequest } from './usage-event.request.dto';

/**
 * The usage.events.v1 envelope of a validated event, exactly as it is produced; `actor` is the name of the API key
 * that reported it (the ledger records it on the debit). Not part of the event's meaning (the fingerprint).
 */
export function toUsageEnvelope(event: UsageEventRequest, actor?: string): EnvelopeOf<'UsageRecorded', UsageRecordedV1> {
  const { id, accountId, occurredAt, ...data } = event;
  return { id, type: USAGE_RECORDED.type, version: USAGE_RECORDED.version, accountId, occurredAt, data, ...(actor !== undefined && { actor }) };
}

/**
 * What a validated usage event means, as one string, so that a retry is recognised whatever its spelling: keys
 * sorted at every level, absent fields and an empty `metadata` left out, `occurredAt` as the UTC instant with
 * milliseconds (`…00Z`, `…00.000Z` and `…01:00:00+01:00` are one instant). Order inside `responses` is kept:
 * it is the council's order.
 */
export function canonicalUsage(event: UsageEventRequest): string {
  const { occurredAt, metadata, ...rest } = event;
  const hasMetadata = metadata !== undefined && Object.keys(metadata).length > 0;
  return canonicalJson({ ...rest, occurredAt: new Date(occurredAt).toISOString(), ...(hasMetadata ? { metadata } : {}) });
}

const FINGERPRINT_VERSION = 'v2:';

/** Content fingerprint stored with each accepted usage id: a hash of the canonical form, versioned. */
export function usageFingerprint(event: UsageEventRequest): string {
  return FINGERPRINT_VERSION + sha256(canonicalUsage(event));
}

/**
 * Whether a stored fingerprint is this event's. Rows written before canonical fingerprints hold the hash of the
 * envelope's bytes (no version prefix); a byte-identical retry of such an event still matches.
 */
export function matchesFingerprint(stored: string, event: UsageEventRequest): boolean {
  if (stored.startsWith(FINGERPRINT_VERSION)) return stored === usageFingerprint(event);
  return stored === sha256(JSON.stringify(toUsageEnvelope(event)));
}

function sha256(text: string): string {
  return hash('sha256', text, 'hex');
}

/**
 * Keys sorted (UTF-16 order, as `<` compares them), undefined members left out, everything else as JSON.stringify
 * writes it. Written into one string as it goes: the fingerprint is computed for every event a request carries.
 */
function canonicalJson(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i > 0 ? ',' : '') + (canonicalJson(value[i]) ?? '');
    return `${out}]`;
  }
  const object = value as Record<string, unknown>;
  let out = '{';
  for (const key of Object.keys(object).sort()) {
    const member = object[key];
    if (member === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(key)}:${canonicalJson(member)}`;
  }
  return `${out}}`;
}

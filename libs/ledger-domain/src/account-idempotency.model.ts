import type { Micro } from '@tally/money';
import type { BucketKind, OverdraftPolicy } from './account.events';

/**
 * Idempotency keys and the fingerprint of the content they were first used with. `decide` computes the
 * fingerprint from the command, `evolve` from the event it produced: both must agree, so both use these.
 */
export type IdempotencyScope = 'grant' | 'usage' | 'cycle' | 'hold' | 'change' | 'refund' | 'void';

export const idempotencyKey = (scope: IdempotencyScope, id: string): string => `${scope}:${id}`;

/**
 * The source too: another pack under one payment reference, or a promotion with another reason under one key, is
 * other content. So is the reason: a promotion's source holds its first 194 characters, and a longer reason follows
 * the source after a NUL (a reason the source ends with adds nothing, so grants with shorter reasons, and grants
 * without one, keep the fingerprint they had before reasons counted).
 */
export const grantFingerprint = (g: { kind: BucketKind; amount: Micro; expiresAt?: string; source: string; reason?: string }): string =>
  `${g.kind}|${g.amount}|${g.expiresAt ?? '-'}|${g.source}${g.reason === undefined || g.source.endsWith(g.reason) ? '' : `\u0000${g.reason}`}`;

/**
 * How a state snapshotted before reasons counted (state version 6 or earlier) remembers a grant: its fingerprint of
 * then (no reason) with a NUL after it, which no fingerprint of now ends with (a reason is never empty). The decider
 * takes the same grant without its reason for a repeat of such a grant only.
 */
export const grantFingerprintBeforeReasons = (g: { kind: BucketKind; amount: Micro; expiresAt?: string; source: string }): string =>
  `${grantFingerprint({ ...g, reason: undefined })}\u0000`;

/** A grant's content as grantFingerprint wrote it (the source, last, may itself hold `|`: a promotion's reason; a reason after it is left out). */
export function parseGrantFingerprint(fingerprint: string): { kind: BucketKind; amount: Micro; expiresAt?: string; source: string } {
  const [kind, amount, expiresAt] = fingerprint.split('|', 3);
  const rest = fingerprint.slice(kind.length + amount.length + expiresAt.length + 3);
  const source = rest.includes('\u0000') ? rest.slice(0, rest.indexOf('\u0000')) : rest;
  return { kind: kind as BucketKind, amount: BigInt(amount), ...(expiresAt !== '-' && { expiresAt }), source };
}

export const usageFingerprint = (u: { amount: Micro }): string => `${u.amount}`;

/** Only the amount: a retried authorization may well compute a later `expiresAt`. */
export const holdFingerprint = (h: { amount: Micro }): string => `${h.amount}`;

export const cycleFingerprint = (c: {
  planId: string;
  periodStart: string;
  periodEnd: string;
  allocation: Micro;
}): string => `${c.planId}|${c.periodStart}|${c.periodEnd}|${c.allocation}`;

export const planChangeFingerprint = (p: {
  planId: string;
  unlimited: boolean;
  thresholds: readonly number[];
  overdraftPolicy: OverdraftPolicy;
}): string => `${p.planId}|${p.unlimited}|${p.thresholds.join(',')}|${p.overdraftPolicy}`;

/** The request as sent: an omitted amount ("all that is left") is not the amount it resolved to. */
export const refundFingerprint = (r: { usageId: string; requestedAmount?: Micro; restoreExpired: boolean; reason: string }): string =>
  `${r.usageId}|${r.requestedAmount ?? 'rest'}|${r.restoreExpired}|${r.reason}`;

export const voidFingerprint = (v: { grantId: string; reason: string }): string => `${v.grantId}|${v.reason}`;

import { createHash } from 'node:crypto';

/** Ids on the wire are at most 128 characters (the contracts' ID_PATTERN). */
const MAX_ID_LENGTH = 128;

/**
 * The id of a cycle or a plan change: `readable` (its parts joined, e.g. account:anchor:index:plan) when it fits in an
 * id, else the account, `kind` and 40 hex digits of the SHA-256 of `readable` (at most 64 + 1 + 6 + 1 + 40 = 112
 * characters). Deterministic, so deciding the same cycle again names it the same and the ledger grants it once; an id
 * that fitted before keeps its value.
 */
export function boundedId(readable: string, accountId: string, kind: 'cycle' | 'change'): string {
  if (readable.length <= MAX_ID_LENGTH) return readable;
  return `${accountId}:${kind}:${createHash('sha256').update(readable).digest('hex').slice(0, 40)}`;
}

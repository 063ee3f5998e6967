import { createHash } from 'node:crypto';

/** Ids on the wire are at most 128 characters (the contracts' ID_PATTERN). */
const MAX_ID_LENGTH = 128;

/** Account ids up to this long keep the digest form they have always had (ids already issued must not change). */
const PREFIXED_ACCOUNT_MAX = 64;

/**
 * The id of a cycle or a plan change: `readable` (its parts joined, e.g. account:anchor:index:plan) when it fits in an
 * id, else 40 hex digits of the SHA-256 of `readable` after the account and `kind` (at most 64 + 1 + 6 + 1 + 40 = 112
 * characters), or after `kind` alone for an account id longer than 64 (up to 128, as every other service takes: the
 * digest covers the account). Deterministic, so deciding the same cycle again names it the same and the ledger grants
 * it once; an id issued before keeps its value.
 */
export function boundedId(readable: string, accountId: string, kind: 'cycle' | 'change'): string {
  if (readable.length <= MAX_ID_LENGTH) return readable;
  const digest = createHash('sha256').update(readable).digest('hex').slice(0, 40);
  return accountId.length <= PREFIXED_ACCOUNT_MAX ? `${accountId}:${kind}:${digest}` : `${kind}:${digest}`;
}

import { Map as ImmutableMap } from 'immutable';
import { maxMicro as max, minMicro as min, type Micro } from '@tally/money';

/**
 * Who paid a debit's carried overdraft, so that refunding it gives the credits back where they came from.
 *
 * The overdraft an account ever carried lies on one line, in micro-credits, in the order it was incurred: each
 * debit's carried tail takes the next `amount` positions (DebitRecord.tailAt). Grants pay the line from its front
 * (OverdraftSettled: the oldest debt first), and each grant keeps the ranges it paid. A refund of a tail still owed
 * takes exactly its own positions back (they become holes, skipped by later payments); of a tail some grant paid,
 * the credits go back to that grant's bucket (or are forfeited, as a share of a bucket that has expired since is).
 *
 * Everything here folds from the events the account always recorded (OverdraftIncurred, OverdraftSettled and
 * UsageRefunded.overdraftReduced), so old streams get it too. Before this model, a refund reduced the overdraft by
 * as much of its tail as the account owed in total (another debit's debt, possibly): such a refund's excess is
 * taken from the front of the line, paid by no grant.
 */
export type DebtRange = readonly [from: Micro, to: Micro];

export interface DebtLine {
  /** Everything ever carried: where the next debit's tail starts. */
  readonly incurred: Micro;
  /** Every position before this one is paid (by a grant, or taken back by a refund); holes at or after it are too. */
  readonly paidTo: Micro;
  /** Ranges at or after `paidTo` that refunds took back while still owed, in order: payments skip them. */
  readonly holes: readonly DebtRange[];
  /** The ranges each grant paid, by grant id (only grants that paid overdraft). */
  readonly paidBy: ImmutableMap<string, readonly DebtRange[]>;
}

export const emptyDebtLine: DebtLine = Object.freeze<DebtLine>({ incurred: 0n, paidTo: 0n, holes: [], paidBy: ImmutableMap<string, readonly DebtRange[]>() });

/** A part of a debit's tail as it stands: still owed (`paidBy` absent), paid by a grant (its id), or paid otherwise (null). */
export interface DebtPiece {
  readonly amount: Micro;
  readonly paidBy?: string | null;
}

/** How many positions two ranges share. */
export function overlap([a, b]: DebtRange, [c, d]: DebtRange): Micro {
  const from = max(a, c);
  const to = min(b, d);
  return to > from ? to - from : 0n;
}

/** A debit's tail of `amount` is carried: it takes the next positions. Returns the line and where the tail starts. */
export function incurDebt(line: DebtLine, amount: Micro): { line: DebtLine; tailAt: Micro } {
  return { line: { ...line, incurred: line.incurred + amount }, tailAt: line.incurred };
}

/** `amount` of the oldest debt is paid, by grant `grantId` (or, null, by no grant): from the front, skipping holes. */
export function payDebt(line: DebtLine, amount: Micro, grantId: string | null): DebtLine {
  const paid: DebtRange[] = [];
  let { paidTo, holes } = skipHoles(line.paidTo, line.holes);
  for (let left = amount; left > 0n; ) {
    const until = holes.length > 0 ? min(holes[0][0], paidTo + left) : paidTo + left;
    paid.push([paidTo, until]);
    left -= until - paidTo;
    ({ paidTo, holes } = skipHoles(until, holes));
  }
  const paidBy = grantId === null || paid.length === 0 ? line.paidBy : line.paidBy.set(grantId, [...(line.paidBy.get(grantId) ?? []), ...paid]);
  return { ...line, paidTo, holes, paidBy };
}

/**
 * The pieces of the line range [from, to) (a refunded part of one debit's tail), from its end back to its start, as
 * a refund gives a debit back: the part still owed, and the part paid, by whom.
 */
export function debtPieces(line: DebtLine, from: Micro, to: Micro): DebtPiece[] {
  const pieces: { from: Micro; to: Micro; paidBy?: string | null }[] = [];
  if (to > line.paidTo) pieces.push({ from: max(from, line.paidTo), to });
  const paidEnd = min(to, line.paidTo);
  if (paidEnd > from) {
    // The paid part: each grant's overlap with it, and what no grant paid (a refund before this model took it back).
    const byGrant: { from: Micro; to: Micro; paidBy: string }[] = [];
    for (const [grantId, ranges] of line.paidBy) {
      for (const [a, b] of ranges) {
        const lo = max(a, from);
        const hi = min(b, paidEnd);
        if (hi > lo) byGrant.push({ from: lo, to: hi, paidBy: grantId });
      }
    }
    byGrant.sort((x, y) => (x.from < y.from ? -1 : 1));
    let position = from;
    for (const piece of byGrant) {
      if (piece.from > position) pieces.push({ from: position, to: piece.from, paidBy: null });
      pieces.push(piece);
      position = piece.to;
    }
    if (paidEnd > position) pieces.push({ from: position, to: paidEnd, paidBy: null });
  }
  // Neighbours paid by the same grant are one piece: a bucket that paid a tail in two settlements (a renewal, then
  // a hold giving credits back) gets it back as one share.
  const merged: DebtPiece[] = [];
  for (const piece of pieces.sort((x, y) => (x.from > y.from ? -1 : 1))) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.paidBy === piece.paidBy) merged[merged.length - 1] = { ...last, amount: last.amount + piece.to - piece.from };
    else merged.push({ amount: piece.to - piece.from, ...(piece.paidBy !== undefined && { paidBy: piece.paidBy }) });
  }
  return merged;
}

/**
 * A refund took `reduced` off the overdraft for the line range [from, to) of its debit's tail: the part of that range
 * still owed (its end, as a refund gives back from the end) becomes a hole; whatever `reduced` exceeds it by (refunds
 * recorded before this model) is taken from the front, paid by no grant.
 */
export function takeBackDebt(line: DebtLine, from: Micro, to: Micro, reduced: Micro): DebtLine {
  const owedFrom = max(from, line.paidTo);
  const owed = to > owedFrom ? min(to - owedFrom, reduced) : 0n;
  let next = line;
  if (owed > 0n) {
    const holes = [...line.holes, [to - owed, to] as const].sort((x, y) => (x[0] < y[0] ? -1 : 1));
    next = { ...line, ...skipHoles(line.paidTo, holes) };
  }
  return reduced > owed ? payDebt(next, reduced - owed, null) : next;
}

/** The front moved past the holes it reaches: they are paid (taken back) already. */
function skipHoles(paidTo: Micro, holes: readonly DebtRange[]): { paidTo: Micro; holes: readonly DebtRange[] } {
  let front = paidTo;
  let first = 0;
  while (first < holes.length && holes[first][0] <= front) {
    front = max(front, holes[first][1]);
    first += 1;
  }
  return { paidTo: front, holes: first === 0 ? holes : holes.slice(first) };
}

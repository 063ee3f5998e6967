import { MAX_AMOUNT_MICROS, MAX_BALANCE_MICROS, type Micro } from '@tally/money';
import { MAX_REASON_LENGTH, reasonLength, type AccountCommand, type GrantCredits, type PlaceHold, type RecordUsage, type RefundUsage, type ReleaseHold, type StartCycle, type VoidGrant } from '../../account.commands';
import type { AccountErrorCode } from '../../account.errors';
import type { AccountEvent, BucketKind, BucketShare, HoldReleaseReason, ModelShare, OverdraftPolicy } from '../../account.events';
import type { BalanceView } from '../../account-balance.view';

/**
 * A second, deliberately simple model of the account, written from docs/architecture.md ("The account") and the
 * README ("Money and exactly-once"), not from the decider. It is slow on purpose: plain objects, arrays searched
 * from the start, a state copied whole on every command. It speaks the decider's language (its commands, events,
 * refusal codes and BalanceView) so a simulation can compare the two step by step.
 *
 * Each rule below names where it comes from: [A] docs/architecture.md, [R] README, [D] a rule the docs are silent
 * on, aligned with the decider and written down in architecture.md as a (since) bullet; [C] the README's
 * "Corrections" (refunds and voids).
 */

export interface ModelBucket {
  readonly id: string;
  readonly kind: BucketKind;
  amount: Micro;
  readonly expiresAt?: string;
  /** Grant order, for ties. */
  readonly seq: number;
  /** Set when a cycle reset expired this allowance: credits a hold gives back to it later expire too. */
  closed?: true;
  /** [C] Voided: what is left is removed, and credits a hold gives back to it later expire (reason voided). */
  voided?: true;
  /** [D] Expired past its date once: a later decision whose clock reads earlier (another instance, behind) does not bring it back. */
  lapsed?: true;
}

/** [C] A usage debit as a refund needs it: its shares in the order taken, then the part no bucket covered. */
export interface ModelDebit {
  readonly amount: Micro;
  readonly shares: BucketShare[];
  /** amount − the shares: overdraft carried (`carried`), or written off / never charged. */
  readonly uncovered: Micro;
  readonly carried: boolean;
  readonly lines: ModelShare[];
  readonly cycleId: string | null;
  refunded: Micro;
}

export interface ModelHold {
  readonly id: string;
  readonly amount: Micro;
  readonly perBucket: BucketShare[];
  readonly expiresAt: string;
}

export interface ModelPlan {
  planId: string | null;
  unlimited: boolean;
  thresholds: number[];
  overdraftPolicy: OverdraftPolicy;
}

export interface ModelCycle {
  cycleId: string;
  allocation: Micro;
  periodStart: string;
  periodEnd: string;
}

export interface ModelState {
  exists: boolean;
  buckets: ModelBucket[];
  holds: ModelHold[];
  overdraft: Micro;
  usedThisCycle: Micro;
  cycle: ModelCycle | null;
  plan: ModelPlan;
  /** Thresholds announced and not re-armed. */
  crossed: number[];
  depleted: boolean;
  /**
   * [A] (since) Within one decision: the thresholds announced earlier that it may announce again, and whether
   * depletion may be (see rearmAtBoundary). Not kept from one decision to the next.
   */
  rearmed?: number[];
  depletionRearmed?: boolean;
  /** Idempotency key → the content it was first used with. */
  keys: Record<string, string>;
  seq: number;
  /** [C] Every usage debit, by usage id. */
  debits: Record<string, ModelDebit>;
  /**
   * [D] The overdraft ever carried, as segments in the order it was incurred: owed (`paidBy` absent), paid by a grant
   * (the oldest debt first), or taken back by a refund ('refunded', never paid or refunded again). `carriedInto`:
   * the last cycle that began while it was owed (that cycle's use counts it).
   */
  debt: { usageId: string; amount: Micro; paidBy?: string; carriedInto?: string }[];
}

export const modelInitialState: ModelState = {
  exists: false,
  buckets: [],
  holds: [],
  overdraft: 0n,
  usedThisCycle: 0n,
  cycle: null,
  plan: { planId: null, unlimited: false, thresholds: [], overdraftPolicy: 'carry' },
  crossed: [],
  depleted: false,
  keys: {},
  seq: 0,
  debits: {},
  debt: [],
};

export type ModelResult =
  | { readonly ok: true; readonly events: AccountEvent[]; readonly state: ModelState }
  | { readonly ok: false; readonly code: AccountErrorCode };

/** A refusal inside the model: thrown, caught by `modelStep`, so a refused command changes nothing [R]. */
class Refused {
  constructor(readonly code: AccountErrorCode) {}
}
const refuse = (code: AccountErrorCode): never => {
  throw new Refused(code);
};

const ms = (iso: string) => Date.parse(iso);
const isDue = (expiresAt: string | undefined, now: Date) => expiresAt !== undefined && ms(expiresAt) <= now.getTime();
const sum = (values: Micro[]) => values.reduce((a, b) => a + b, 0n);

export const modelAvailable = (s: ModelState): Micro => sum(s.buckets.map((b) => b.amount));
export const modelHeld = (s: ModelState): Micro => sum(s.holds.map((h) => h.amount));

/** [R][A] Allowance and promotional by soonest expiry, no expiry after any expiry, purchased last; ties by grant order. */
function inDeductionOrder(s: ModelState): ModelBucket[] {
  const rank = (b: ModelBucket) => [b.expiresAt === undefined ? Infinity : ms(b.expiresAt), b.kind === 'purchased' ? 1 : 0, b.seq];
  return s.buckets
    .filter((b) => b.amount > 0n)
    .sort((x, y) => {
      const [a, b] = [rank(x), rank(y)];
      for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
      return 0;
    });
}

/** Takes up to `amount` from the buckets in deduction order; returns the shares taken. */
function take(s: ModelState, amount: Micro): BucketShare[] {
  const shares: BucketShare[] = [];
  let left = amount;
  for (const bucket of inDeductionOrder(s)) {
    if (left === 0n) break;
    const part = bucket.amount < left ? bucket.amount : left;
    bucket.amount -= part;
    left -= part;
    shares.push({ bucketId: bucket.id, kind: bucket.kind, amount: part });
  }
  return shares;
}

/** [D] A grant pays `amount` of the oldest debt still owed. */
function payDebt(s: ModelState, amount: Micro, grantId: string): void {
  let left = amount;
  for (let i = 0; i < s.debt.length && left > 0n; i += 1) {
    const segment = s.debt[i];
    if (segment.paidBy !== undefined) continue;
    if (segment.amount > left) {
      s.debt.splice(i + 1, 0, { ...segment, amount: segment.amount - left });
      segment.amount = left;
    }
    segment.paidBy = grantId;
    left -= segment.amount;
  }
}

function giveBack(s: ModelState, shares: readonly BucketShare[]): void {
  for (const share of shares) {
    const bucket = s.buckets.find((b) => b.id === share.bucketId);
    if (bucket) bucket.amount += share.amount;
  }
}

/** One step of the model: the events the command produces and the state after them, or the refusal code. */
export function modelStep(state: ModelState, command: AccountCommand, now: Date): ModelResult {
  const s = structuredClone(state);
  const out: AccountEvent[] = [];
  try {
    decideInto(s, command, now, out);
    delete s.rearmed; // within one decision only (rearmAtBoundary)
    delete s.depletionRearmed;
    return { ok: true, events: out, state: s };
  } catch (error) {
    if (error instanceof Refused) return { ok: false, code: error.code };
    throw error;
  }
}

function decideInto(s: ModelState, c: AccountCommand, now: Date, out: AccountEvent[]): void {
  const at = now.toISOString();
  validate(c);

  // [A] Same key + same content returns the first result (nothing new); same key + other content is a conflict.
  const key = keyOf(c);
  if (key) {
    const seen = s.keys[key.key];
    if (seen !== undefined) {
      if (seen === key.content) return;
      refuse('IDEMPOTENCY_CONFLICT');
    }
  }

  // [D] The expiry worker's sweep for one bucket does something only when that bucket still holds credits and is
  // due, so its key (expire-credits:<bucketId>) records events once, for that very bucket.
  if (c.type === 'ExpireCredits' && c.bucketId !== undefined) {
    const bucket = s.buckets.find((b) => b.id === c.bucketId);
    if (!bucket || bucket.amount === 0n || !isDue(bucket.expiresAt, now)) return;
  }

  // [D] Releasing a hold that is not open (unknown, settled, released), or expiring one before its time, is a no-op.
  if (c.type === 'ReleaseHold') {
    const hold = s.holds.find((h) => h.id === c.holdId);
    if (!hold || (c.reason === 'expired' && !isDue(hold.expiresAt, now))) return;
  }

  // [D] A hold already due would be placed and expired at once: refused (after the idempotency check, so a retry of
  // a hold placed earlier is recognised whatever its expiry). [A] (since) Under an unlimited plan a hold reserves
  // nothing and records no event, and [D] decides nothing else either: its key is not remembered, so what fell due
  // is left to the expiry worker or the next command.
  if (c.type === 'PlaceHold') {
    if (ms(c.expiresAt) <= now.getTime()) refuse('INVALID_COMMAND');
    if (s.plan.unlimited) return;
  }

  // [D] A cycle that starts before the current one (a stale message replayed) is refused: it changes nothing.
  if (c.type === 'StartCycle' && s.cycle && ms(c.periodStart) < ms(s.cycle.periodStart)) refuse('INVALID_COMMAND');

  // [C] A correction of something the account never had is refused (and so opens nothing).
  if (c.type === 'RefundUsage' && s.debits[c.usageId] === undefined) refuse('USAGE_NOT_FOUND');
  if (c.type === 'VoidGrant') {
    const bucket = s.buckets.find((b) => b.id === c.grantId);
    if (!bucket) refuse('GRANT_NOT_FOUND');
    else if (bucket.kind === 'allowance') refuse('GRANT_NOT_VOIDABLE');
    else if (bucket.voided) refuse('ALREADY_VOIDED');
  }

  const boundary = { available: s.exists ? modelAvailable(s) : 0n, level: s.exists ? thresholdLevel(s, now) : 0n };
  // [A] The first command opens the account; [D] housekeeping and a release of an unknown hold do not.
  if (!s.exists) {
    if (c.type === 'ExpireCredits' || c.type === 'ReleaseHold') return;
    s.exists = true;
    out.push({ type: 'AccountOpened', data: { accountId: c.accountId, openedAt: at } });
  }

  // [A] (since) Holds past their TTL and grants past their expiry are released and expired: before the command...
  const before = out.length;
  housekeeping(s, now, out);
  rearmAtBoundary(s, boundary, now);
  // [A] ...and credits expiring take available down like spending does, so thresholds are announced (while the
  // cycle runs: [D] at its end the allowance expires with the cycle, which is no low balance; announceThresholds
  // announces nothing of a cycle that has ended).
  if (out.slice(before).some((e) => e.type === 'CreditsExpired')) announceThresholds(s, now, out);

  let releasedNow: ModelHold[] = [];
  switch (c.type) {
    case 'GrantCredits':
      grant(s, c, now, out);
      break;
    case 'RecordUsage':
      usage(s, c, now, out);
      break;
    case 'StartCycle':
      startCycle(s, c, now, out);
      break;
    case 'ChangePlan':
      s.plan = { planId: c.planId, unlimited: c.unlimited, thresholds: [...c.thresholds], overdraftPolicy: c.overdraftPolicy };
      out.push({ type: 'PlanChanged', data: { changeId: c.changeId, planId: c.planId, unlimited: c.unlimited, thresholds: [...c.thresholds], overdraftPolicy: c.overdraftPolicy } });
      break;
    case 'PlaceHold':
      placeHold(s, c, now, out);
      break;
    case 'ReleaseHold':
      releasedNow = releaseHold(s, c, out);
      break;
    case 'ExpireCredits':
      break;
    case 'RefundUsage':
      refundUsage(s, c, now, out);
      break;
    case 'VoidGrant':
      voidGrant(s, c, now, out);
      break;
  }
  // A key is remembered with the events it recorded ([A] an unlimited plan's hold records none, so none is kept).
  if (key && out.length > 0) s.keys[key.key] = key.content;
  // ...and after it, for credits a released hold gave back to a bucket already due (and to the overdraft).
  housekeeping(s, now, out, releasedNow);
}

/** [R] One amount at most MAX_AMOUNT_MICROS; grants and holds positive, usage and allocations not negative. */
function validate(c: AccountCommand): void {
  const amount = (value: unknown, positive: boolean) => {
    if (typeof value !== 'bigint' || value < 0n || (positive && value === 0n)) refuse('INVALID_AMOUNT');
    if ((value as bigint) > MAX_AMOUNT_MICROS) refuse('AMOUNT_OUT_OF_RANGE');
  };
  switch (c.type) {
    case 'GrantCredits':
      return amount(c.amount, true);
    case 'PlaceHold':
      return amount(c.amount, true);
    case 'RecordUsage':
      return amount(c.amount, false);
    case 'StartCycle':
      amount(c.allocation, false);
      if (ms(c.periodEnd) <= ms(c.periodStart)) refuse('INVALID_COMMAND');
      if (c.thresholds.some((t) => !(t > 0 && t < 100))) refuse('INVALID_COMMAND');
      return;
    case 'ChangePlan':
      if (c.thresholds.some((t) => !(t > 0 && t < 100))) refuse('INVALID_COMMAND');
      return;
    case 'ReleaseHold':
    case 'ExpireCredits':
      return;
    case 'RefundUsage':
      if (c.amount !== undefined) amount(c.amount, true);
      return reason(c.reason);
    case 'VoidGrant':
      return reason(c.reason);
  }
}

/** [C] A correction's reason: 1-500 characters, not blank. */
function reason(text: string): void {
  if (text.trim() === '' || reasonLength(text) > MAX_REASON_LENGTH) refuse('INVALID_COMMAND');
}

/** [A] Every command that changes money carries an idempotency key; its content compared as meaning [R]. */
function keyOf(c: AccountCommand): { key: string; content: string } | null {
  const instant = (iso: string | undefined) => (iso === undefined ? '-' : String(ms(iso)));
  switch (c.type) {
    case 'GrantCredits':
      // The reason too, where the source does not already end with it (a promotion's longer than its source keeps).
      return { key: `grant:${c.grantId}`, content: `${c.kind}|${c.amount}|${instant(c.expiresAt)}|${c.source}${c.reason === undefined || c.source.endsWith(c.reason) ? '' : `\u0000${c.reason}`}` };
    case 'RecordUsage':
      return { key: `usage:${c.usageId}`, content: `${c.amount}` };
    case 'StartCycle':
      return { key: `cycle:${c.cycleId}`, content: `${c.planId}|${instant(c.periodStart)}|${instant(c.periodEnd)}|${c.allocation}` };
    case 'ChangePlan':
      return { key: `change:${c.changeId}`, content: `${c.planId}|${c.unlimited}|${c.thresholds.join(',')}|${c.overdraftPolicy}` };
    case 'PlaceHold':
      return { key: `hold:${c.holdId}`, content: `${c.amount}` };
    case 'ReleaseHold':
    case 'ExpireCredits':
      return null;
    case 'RefundUsage':
      // [C] The request as sent: no amount means "all that is left", whatever that resolves to.
      return { key: `refund:${c.refundId}`, content: `${c.usageId}|${c.amount ?? 'rest'}|${c.restoreExpired}|${c.reason}` };
    case 'VoidGrant':
      return { key: `void:${c.voidId}`, content: `${c.grantId}|${c.reason}` };
  }
}

/** [D] A cycle with an allowance has ended and the next has not started: the renewal gap. */
function betweenCycles(s: ModelState, now: Date): boolean {
  return s.cycle !== null && s.cycle.allocation > 0n && now.getTime() >= ms(s.cycle.periodEnd);
}

function housekeeping(s: ModelState, now: Date, out: AccountEvent[], released: ModelHold[] = []): void {
  const gone = [...released];
  for (const hold of [...s.holds]) {
    if (!isDue(hold.expiresAt, now)) continue;
    release(s, hold, 'expired', out);
    gone.push(hold);
  }
  expireDeadBuckets(s, now, out);
  if (gone.length > 0) repayFromCredits(s, now, out, gone.flatMap((h) => h.perBucket), gone.reduce((sum, h) => sum + h.amount, 0n));
}

/**
 * [A] (since) What a hold gives back (released, expired, or settled for less: `amount` of it, from the buckets its
 * `shares` name, as far as they still hold it) pays the overdraft carried, at once, oldest debt first, in deduction
 * order, each bucket the payer of what it paid; other credits of the account do not. [D] Not between a cycle's end
 * and the next (that overdraft is usage the next allowance pays).
 */
function repayFromCredits(s: ModelState, now: Date, out: AccountEvent[], shares: readonly BucketShare[], amount: Micro): void {
  if (betweenCycles(s, now)) return;
  payFromBuckets(s, out, amount, (bucket) => sum(shares.filter((x) => x.bucketId === bucket.id).map((x) => x.amount)));
}

/** [A] Overdraft paid from buckets in deduction order (at most `amount`, `limit` of each), each the payer of its part. */
function payFromBuckets(s: ModelState, out: AccountEvent[], amount: Micro, limit: (bucket: ModelBucket) => Micro): void {
  let left = amount;
  for (const bucket of inDeductionOrder(s)) {
    const given = limit(bucket);
    let part = bucket.amount < given ? bucket.amount : given;
    if (part > left) part = left;
    if (part > s.overdraft) part = s.overdraft;
    if (part === 0n) continue;
    bucket.amount -= part;
    s.overdraft -= part;
    left -= part;
    payDebt(s, part, bucket.id);
    out.push({ type: 'OverdraftSettled', data: { grantId: bucket.id, amount: part, remaining: s.overdraft, fromBucket: true } });
  }
}

/** [A] Credits in a bucket past its date, closed by a cycle or voided are no longer available: they expire. */
function expireDeadBuckets(s: ModelState, now: Date, out: AccountEvent[], only: (bucket: ModelBucket) => boolean = () => true): void {
  for (const bucket of s.buckets) {
    if (bucket.amount > 0n && only(bucket) && (bucket.closed || bucket.voided || bucket.lapsed || isDue(bucket.expiresAt, now))) {
      // [D] Past its date it is 'expired', whatever closed it before.
      const reason = isDue(bucket.expiresAt, now) ? 'expired' : bucket.voided ? 'voided' : bucket.closed ? 'cycle-reset' : 'expired';
      if (reason === 'expired') bucket.lapsed = true;
      out.push({ type: 'CreditsExpired', data: { bucketId: bucket.id, kind: bucket.kind, amount: bucket.amount, reason, expiredAt: now.toISOString() } });
      bucket.amount = 0n;
    }
  }
}

function release(s: ModelState, hold: ModelHold, reason: HoldReleaseReason, out: AccountEvent[]): void {
  giveBack(s, hold.perBucket);
  s.holds = s.holds.filter((h) => h.id !== hold.id);
  out.push({ type: 'HoldReleased', data: { holdId: hold.id, amount: hold.amount, reason } });
}

/** [R] A grant, purchase or allowance may not lift available + held above the balance bound. */
function checkBalance(s: ModelState, adding: Micro): void {
  if (modelAvailable(s) + modelHeld(s) + adding > MAX_BALANCE_MICROS) refuse('BALANCE_LIMIT_EXCEEDED');
}

/** [A] The next grant settles carried overdraft first; the bucket gets the rest. Then thresholds may re-arm. */
function addGrant(
  s: ModelState,
  g: { grantId: string; kind: BucketKind; amount: Micro; expiresAt?: string; source: string; paymentReference?: string; reason?: string },
  now: Date,
  out: AccountEvent[],
  settlesOverdraft = true,
): void {
  const settled = !settlesOverdraft ? 0n : s.overdraft < g.amount ? s.overdraft : g.amount;
  const net = g.amount - settled;
  checkBalance(s, net);
  if (settled > 0n) {
    payDebt(s, settled, g.grantId);
    s.overdraft -= settled;
    out.push({ type: 'OverdraftSettled', data: { grantId: g.grantId, amount: settled, remaining: s.overdraft } });
  }
  s.seq += 1;
  s.buckets.push({ id: g.grantId, kind: g.kind, amount: net, ...(g.expiresAt !== undefined && { expiresAt: g.expiresAt }), seq: s.seq });
  out.push({
    type: 'CreditsGranted',
    data: {
      grantId: g.grantId,
      bucketId: g.grantId,
      kind: g.kind,
      amount: net,
      ...(g.expiresAt !== undefined && { expiresAt: g.expiresAt }),
      source: g.source,
      ...(g.paymentReference !== undefined && { paymentReference: g.paymentReference }),
      // The audit trail: the reason travels from the command to its event unchanged.
      ...(g.reason !== undefined && { reason: g.reason }),
      grantedAt: now.toISOString(),
      ...(settled > 0n && { overdraftSettled: settled }),
    },
  });
  // [A] A grant that lifts available back to a threshold re-arms it; [D] and lifts depletion. One that arrives already
  // expired lifts nothing: its credits were never spendable.
  if (g.expiresAt !== undefined && isDue(g.expiresAt, now)) return;
  const allocation = s.cycle?.allocation ?? 0n;
  s.crossed = s.crossed.filter((t) => modelAvailable(s) * 100n < BigInt(t) * allocation);
  if (modelAvailable(s) > 0n) s.depleted = false;
}

function grant(s: ModelState, c: GrantCredits, now: Date, out: AccountEvent[]): void {
  // [D] A grant that arrives already expired settles no overdraft: its credits were never spendable.
  addGrant(s, c, now, out, !(c.expiresAt !== undefined && isDue(c.expiresAt, now)));
}

function usage(s: ModelState, c: RecordUsage, now: Date, out: AccountEvent[]): void {
  // [R] used this cycle is a balance: at most MAX_BALANCE_MICROS.
  if (s.usedThisCycle + c.amount > MAX_BALANCE_MICROS) refuse('BALANCE_LIMIT_EXCEEDED');
  const debit = (perBucket: BucketShare[], overdraft: Micro, holdId?: string): AccountEvent => ({
    type: 'UsageDebited',
    data: {
      usageId: c.usageId,
      amount: c.amount,
      perBucket,
      overdraft,
      pricing: c.pricing,
      feature: c.feature,
      models: c.models,
      occurredAt: c.occurredAt,
      debitedAt: now.toISOString(),
      ...(holdId !== undefined && { holdId }),
      ...(c.metadata !== undefined && { metadata: c.metadata }),
    },
  });
  s.usedThisCycle += c.amount;
  // [R] A usage event naming a hold settles it for the actual amount: the reservation goes back, the usage is taken.
  // [D] Also under an unlimited plan, for a hold placed before the plan became unlimited.
  const hold = c.holdId === undefined ? undefined : s.holds.find((h) => h.id === c.holdId);
  if (hold) {
    giveBack(s, hold.perBucket);
    s.holds = s.holds.filter((h) => h.id !== hold.id);
    const released = hold.amount > c.amount ? hold.amount - c.amount : 0n;
    out.push({ type: 'HoldSettled', data: { holdId: hold.id, usageId: c.usageId, heldAmount: hold.amount, settledAmount: c.amount, releasedAmount: released } });
    // [A] Credits given back to an allowance that ended while they were held (a renewal, its date) are gone before the
    // usage is taken: an allowance never pays for a later cycle. [C] A void's or a promotion's end leaves what the hold
    // reserved spendable by this usage; the rest of it expires after.
    expireDeadBuckets(s, now, out, (bucket) => bucket.kind === 'allowance');
  }
  const lines: ModelShare[] = [];
  for (const line of c.pricing.lines) {
    const same = lines.find((l) => l.model === line.model);
    if (same) lines[lines.indexOf(same)] = { model: line.model, amount: same.amount + line.amount };
    else lines.push({ model: line.model, amount: line.amount });
  }
  const remember = (shares: BucketShare[], uncovered: Micro, carried: boolean) => {
    s.debits[c.usageId] = { amount: c.amount, shares, uncovered, carried, lines, cycleId: s.cycle?.cycleId ?? null, refunded: 0n };
  };
  // [A] Unlimited plans record usage and never refuse or alert.
  if (s.plan.unlimited) {
    out.push(debit([], 0n, hold?.id));
    remember([], c.amount, false);
    // [A] What a settled hold gave back repays overdraft carried before the plan became unlimited, as a release does.
    expireDeadBuckets(s, now, out);
    if (hold && hold.amount > c.amount) repayFromCredits(s, now, out, hold.perBucket, hold.amount - c.amount);
    return;
  }
  // [D] Between the end of a cycle with an allowance and the next cycle's start, usage belongs to the next cycle: it
  // takes no credits and is owed as overdraft (under either policy), which the next allowance pays first.
  const deferred = betweenCycles(s, now);
  const shares = deferred ? [] : take(s, c.amount);
  const short = c.amount - sum(shares.map((x) => x.amount));
  const carried = deferred || s.plan.overdraftPolicy === 'carry';
  out.push(debit(shares, short, hold?.id));
  remember(shares, short, short > 0n && carried);
  // [A] Usage is never dropped: the rest is carried as overdraft, or written off under a write-off plan.
  if (short > 0n) {
    if (carried) {
      if (s.overdraft + short > MAX_BALANCE_MICROS) refuse('BALANCE_LIMIT_EXCEEDED');
      s.overdraft += short;
      s.debt.push({ usageId: c.usageId, amount: short });
      out.push({ type: 'OverdraftIncurred', data: { usageId: c.usageId, amount: short, total: s.overdraft } });
    } else {
      out.push({ type: 'OverdraftWrittenOff', data: { usageId: c.usageId, amount: short } });
    }
  }
  // [D] A settled hold gives its rest back to its buckets; what went back to a dead one (past its date, closed,
  // voided) expires now, before the balance is judged: thresholds and depletion see what is really left.
  expireDeadBuckets(s, now, out);
  if (hold && hold.amount > c.amount) repayFromCredits(s, now, out, hold.perBucket, hold.amount - c.amount);
  // [D] Nor is depletion (the usage is owed to the next allowance).
  if (deferred) return;
  announceLowBalance(s, now, out, c.usageId);
}

/**
 * [A] (since) A threshold (and depletion) announced in the cycle may be announced again by this decision when the
 * credits left (with what holds reserve; available for depletion) were back at or above it (above 0) at a boundary between decisions: as the previous decision left the account (a hold
 * released or settled for less), or after this one's housekeeping (a hold expired). Credits given back that the
 * overdraft took in the same decision do not count. [D] Only for this decision: a later one judges again from the
 * account as the previous left it (a void taking available back below, announcing nothing, ends it).
 */
function rearmAtBoundary(s: ModelState, before: { available: Micro; level: Micro }, now: Date): void {
  const max = (a: Micro, b: Micro): Micro => (a > b ? a : b);
  const allocation = s.cycle?.allocation ?? 0n;
  const level = max(thresholdLevel(s, now), before.level);
  s.rearmed = s.crossed.filter((t) => level * 100n >= BigInt(t) * allocation);
  s.depletionRearmed = s.depleted && max(modelAvailable(s), before.available) > 0n;
}

/**
 * [A] (since) Thresholds are judged on the credits left with what open holds reserve: a hold reserves, it does not
 * spend. Only what it reserves from buckets still spendable: not expired, closed by a reset or voided.
 */
function thresholdLevel(s: ModelState, now: Date): Micro {
  const spendable = (id: string) => s.buckets.some((b) => b.id === id && !b.closed && !b.voided && !b.lapsed && !(b.expiresAt !== undefined && ms(b.expiresAt) <= now.getTime()));
  return modelAvailable(s) + sum(s.holds.flatMap((h) => h.perBucket.filter((share) => spendable(share.bucketId)).map((share) => share.amount)));
}

/** [A] Thresholds, then depletion (of this usage, if a usage spent the credits); nothing under an unlimited plan. */
function announceLowBalance(s: ModelState, now: Date, out: AccountEvent[], usageId?: string): void {
  if (s.plan.unlimited) return;
  announceThresholds(s, now, out);
  if ((!s.depleted || s.depletionRearmed) && modelAvailable(s) === 0n) {
    s.depleted = true;
    s.depletionRearmed = false;
    out.push({ type: 'CreditsDepleted', data: { ...(s.cycle && { cycleId: s.cycle.cycleId }), ...(usageId !== undefined && { usageId }) } });
  }
}

/**
 * [A] Announced once when the credits left (with what holds reserve) first fall below N% of the cycle's allocation,
 * the higher threshold first; the event tells what is available.
 */
function announceThresholds(s: ModelState, now: Date, out: AccountEvent[]): void {
  if (s.plan.unlimited || !s.cycle || s.cycle.allocation === 0n) return;
  // [D] Nothing is announced of a cycle that has ended: until the next starts, usage is owed to its allowance.
  if (now.getTime() >= ms(s.cycle.periodEnd)) return;
  const available = modelAvailable(s);
  const level = thresholdLevel(s, now);
  for (const t of [...s.plan.thresholds].sort((a, b) => b - a)) {
    const rearmed = s.rearmed?.includes(t) ?? false;
    if ((s.crossed.includes(t) && !rearmed) || level * 100n >= BigInt(t) * s.cycle.allocation) continue;
    if (rearmed) s.rearmed = s.rearmed?.filter((armed) => armed !== t); // announced once per fall
    if (!s.crossed.includes(t)) s.crossed.push(t);
    out.push({ type: 'LowCreditThresholdCrossed', data: { thresholdPercent: t, cycleId: s.cycle.cycleId, available, allocation: s.cycle.allocation } });
  }
}

/** [A] A new cycle: the previous allowance expires (no rollover), thresholds re-arm, the allocation is granted. */
function startCycle(s: ModelState, c: StartCycle, now: Date, out: AccountEvent[]): void {
  const owed = s.overdraft;
  for (const bucket of s.buckets) {
    if (bucket.kind !== 'allowance') continue;
    if (bucket.amount > 0n) out.push({ type: 'CreditsExpired', data: { bucketId: bucket.id, kind: 'allowance', amount: bucket.amount, reason: 'cycle-reset', expiredAt: now.toISOString() } });
    bucket.amount = 0n;
    bucket.closed = true;
  }
  s.cycle = { cycleId: c.cycleId, allocation: c.allocation, periodStart: c.periodStart, periodEnd: c.periodEnd };
  s.plan = { planId: c.planId, unlimited: c.unlimited, thresholds: [...c.thresholds], overdraftPolicy: c.overdraftPolicy };
  s.usedThisCycle = owed; // usage owed from before the cycle is charged to it
  for (const segment of s.debt) if (segment.paidBy === undefined) segment.carriedInto = c.cycleId;
  s.crossed = [];
  // [R] (since) A new cycle arms depletion again, as it arms its thresholds: an account that starts it owing its whole
  // allowance is announced depleted in it, once.
  s.depleted = false;
  const cycleData = {
    cycleId: c.cycleId,
    planId: c.planId,
    periodStart: c.periodStart,
    periodEnd: c.periodEnd,
    allocation: c.allocation,
    unlimited: c.unlimited,
    thresholds: [...c.thresholds],
    overdraftPolicy: c.overdraftPolicy,
  };
  out.push({ type: 'CycleStarted', data: cycleData });
  // [R] (since) A renewal is never refused at the balance bound: the allowance is what fits (what pays the overdraft always does).
  const room = MAX_BALANCE_MICROS - modelAvailable(s) - modelHeld(s);
  const allowance = c.allocation < (room > 0n ? room : 0n) + s.overdraft ? c.allocation : (room > 0n ? room : 0n) + s.overdraft;
  if (allowance > 0n) {
    addGrant(s, { grantId: `allowance:${c.cycleId}`, kind: 'allowance', amount: allowance, expiresAt: c.periodEnd, source: `plan:${c.planId}` }, now, out);
  }
  // [A] (since) What was owed at the renewal (usage deferred in the renewal gap) is this cycle's: what the allowance
  // leaves of it, the other credits pay at once, in deduction order, and a low or depleted balance is announced as a
  // usage would. [D] Not when this cycle has ended already (the next allowance pays).
  expireDeadBuckets(s, now, out);
  if (owed > 0n && !betweenCycles(s, now)) {
    payFromBuckets(s, out, s.overdraft, (bucket) => bucket.amount);
    announceLowBalance(s, now, out);
  }
}

function placeHold(s: ModelState, c: PlaceHold, now: Date, out: AccountEvent[]): void {
  // Due and unlimited holds were answered before the housekeeping (decideInto).
  const available = modelAvailable(s);
  // [D] Between the end of a cycle with an allowance and the next cycle's start, a hold what is left cannot cover waits
  // for the renewal (retryable), which alone says whether the account can pay.
  const renewing = betweenCycles(s, now);
  if (c.amount > available) refuse(renewing ? 'CYCLE_RENEWAL_PENDING' : 'INSUFFICIENT_CREDITS');
  const perBucket = take(s, c.amount);
  s.holds.push({ id: c.holdId, amount: c.amount, perBucket, expiresAt: c.expiresAt });
  out.push({ type: 'HoldPlaced', data: { holdId: c.holdId, amount: c.amount, perBucket, expiresAt: c.expiresAt } });
  announceThresholds(s, now, out);
}

/** The hold it released, if any (its credits go back; the housekeeping after the command repays from them). */
function releaseHold(s: ModelState, c: ReleaseHold, out: AccountEvent[]): ModelHold[] {
  // A due hold was already released as expired by the housekeeping above; 'expired' before its time is a no-op.
  const hold = s.holds.find((h) => h.id === c.holdId);
  if (!hold || c.reason === 'expired') return [];
  release(s, hold, 'released', out);
  return [hold];
}

/** [C] Credits go back to a bucket only while it is live: not past its date, not closed by a cycle, not voided. */
function isLive(s: ModelState, bucket: ModelBucket, now: Date): boolean {
  if (bucket.closed || bucket.voided || bucket.lapsed || isDue(bucket.expiresAt, now)) return false;
  return bucket.kind !== 'allowance' || (s.cycle !== null && bucket.id === `allowance:${s.cycle.cycleId}`);
}

/**
 * [C] A refund: at most what is left of the debit; it unwinds the debit from its end (the part no bucket covered,
 * then the buckets last taken first); the uncovered part forgives the overdraft still owed, and comes back as credits
 * for what later grants paid of it; a share goes back to a live bucket, else is forfeited, or with restoreExpired
 * reissued as a promotional bucket without expiry.
 */
function refundUsage(s: ModelState, c: RefundUsage, now: Date, out: AccountEvent[]): void {
  const debit = s.debits[c.usageId];
  const left = debit.amount - debit.refunded;
  const amount = c.amount ?? left;
  if (amount <= 0n || amount > left) refuse('REFUND_EXCEEDS_DEBIT');
  // The positions of the debit still unrefunded are [0, left); this refund takes [left − amount, left).
  const from = left - amount;
  const part = (start: Micro, length: Micro): Micro => {
    const lo = start > from ? start : from;
    const hi = start + length < left ? start + length : left;
    return hi > lo ? hi - lo : 0n;
  };
  const covered = sum(debit.shares.map((x) => x.amount));
  const tail = part(covered, debit.uncovered);
  let overdraftReduced = 0n;
  let carriedBack = 0n; // of the carried part, what was owed when the current cycle began
  let uncharged = 0n;
  let reissue = 0n;
  const restored: BucketShare[] = [];
  const forfeited: BucketShare[] = [];
  const give = (bucketId: string, amount: Micro) => {
    const bucket = s.buckets.find((b) => b.id === bucketId) as ModelBucket;
    if (isLive(s, bucket, now)) restored.push({ bucketId, kind: bucket.kind, amount });
    else if (c.restoreExpired) reissue += amount;
    else forfeited.push({ bucketId, kind: bucket.kind, amount });
  };
  if (!debit.carried) uncharged = tail;
  else if (tail > 0n) {
    // [C] The carried part, from its end: still owed → owed no more; paid by a grant → back to that grant, like a
    // share of its bucket (the next allowance that paid it expires, so do they).
    const pieces: { paidBy?: string; amount: Micro }[] = [];
    const own = s.debt.filter((segment) => segment.usageId === c.usageId);
    const tailFrom = (from > covered ? from : covered) - covered;
    const tailTo = left - covered;
    let position = sum(own.map((segment) => segment.amount));
    for (const segment of [...own].reverse()) {
      position -= segment.amount;
      const lo = position > tailFrom ? position : tailFrom;
      const hi = position + segment.amount < tailTo ? position + segment.amount : tailTo;
      if (hi <= lo) continue;
      if (segment.carriedInto !== undefined && segment.carriedInto === s.cycle?.cycleId) carriedBack += hi - lo;
      const last = pieces[pieces.length - 1];
      if (last && last.paidBy === segment.paidBy) last.amount += hi - lo;
      else pieces.push({ ...(segment.paidBy !== undefined && { paidBy: segment.paidBy }), amount: hi - lo });
      if (segment.paidBy === undefined) {
        // Taken back: split off, kept in place (the debit's positions stay where they are).
        const at = s.debt.indexOf(segment);
        const parts = [
          { ...segment, amount: lo - position },
          { ...segment, amount: hi - lo, paidBy: 'refunded' },
          { ...segment, amount: position + segment.amount - hi },
        ].filter((p) => p.amount > 0n);
        s.debt.splice(at, 1, ...parts);
      }
    }
    for (const piece of pieces) {
      if (piece.paidBy === undefined) overdraftReduced += piece.amount;
      else give(piece.paidBy, piece.amount);
    }
  }
  let position = covered;
  for (const share of [...debit.shares].reverse()) {
    position -= share.amount;
    const back = part(position, share.amount);
    if (back > 0n) give(share.bucketId, back);
  }
  checkBalance(s, sum(restored.map((x) => x.amount)) + reissue);
  const perModel: ModelShare[] = [];
  let linePosition = sum(debit.lines.map((l) => l.amount));
  for (const line of [...debit.lines].reverse()) {
    linePosition -= line.amount;
    const give = part(linePosition, line.amount);
    if (give > 0n) perModel.push({ model: line.model, amount: give });
  }

  for (const piece of restored) (s.buckets.find((b) => b.id === piece.bucketId) as ModelBucket).amount += piece.amount;
  if (reissue > 0n) {
    s.seq += 1;
    s.buckets.push({ id: c.refundId, kind: 'promotional', amount: reissue, seq: s.seq });
  }
  s.overdraft -= overdraftReduced;
  // The cycle's use gives back what it was charged for: all of a debit of this cycle, else its tail owed at its start.
  const charged = debit.cycleId === (s.cycle?.cycleId ?? null) ? amount : carriedBack;
  s.usedThisCycle -= charged < s.usedThisCycle ? charged : s.usedThisCycle;
  debit.refunded += amount;
  out.push({
    type: 'UsageRefunded',
    data: {
      refundId: c.refundId,
      usageId: c.usageId,
      amount,
      ...(c.amount !== undefined && { requestedAmount: c.amount }),
      restored,
      forfeited,
      ...(reissue > 0n && { reissued: { bucketId: c.refundId, amount: reissue } }),
      overdraftReduced,
      uncharged,
      perModel,
      restoreExpired: c.restoreExpired,
      reason: c.reason,
      refundedAt: now.toISOString(),
    },
  });
  // Credits coming back re-arm thresholds and end depletion, as a grant's do.
  const allocation = s.cycle?.allocation ?? 0n;
  s.crossed = s.crossed.filter((t) => modelAvailable(s) * 100n < BigInt(t) * allocation);
  if (modelAvailable(s) > 0n) s.depleted = false;
}

/** [C] A void removes what is left of the grant; what was spent stays spent; like spending, it may cross a threshold. */
function voidGrant(s: ModelState, c: VoidGrant, now: Date, out: AccountEvent[]): void {
  const bucket = s.buckets.find((b) => b.id === c.grantId) as ModelBucket;
  const amount = bucket.amount;
  bucket.amount = 0n;
  bucket.voided = true;
  out.push({
    type: 'GrantVoided',
    data: { voidId: c.voidId, grantId: c.grantId, bucketId: c.grantId, kind: bucket.kind, amount, reason: c.reason, voidedAt: now.toISOString() },
  });
  announceThresholds(s, now, out);
}

/** The balance the model keeps, in the decider's BalanceView shape. */
export function modelBalance(s: ModelState): BalanceView {
  const byKind: Record<BucketKind, Micro> = { allowance: 0n, promotional: 0n, purchased: 0n };
  for (const b of s.buckets) byKind[b.kind] += b.amount;
  return {
    available: modelAvailable(s),
    byKind,
    held: modelHeld(s),
    overdraft: s.overdraft,
    allocation: s.cycle?.allocation ?? 0n,
    usedThisCycle: s.usedThisCycle,
    cycleId: s.cycle?.cycleId ?? null,
    cycleEnd: s.cycle?.periodEnd ?? null,
    unlimited: s.plan.unlimited,
    planId: s.plan.planId,
  };
}

/** [A] The balance as read at `now`: holds and credits already due are left out, housekeeping recorded or not. */
export function modelBalanceAt(state: ModelState, now: Date): BalanceView {
  const s = structuredClone(state);
  housekeeping(s, now, []);
  return modelBalance(s);
}

import {
  ContractViolation,
  isLedgerEventType,
  type BalanceSnapshotV1,
  type Envelope,
  type LedgerEventEnvelope,
  type LedgerEventPayload,
  type UsageDebitedV2,
} from '@tally/contracts';
import { parseCredits } from '@tally/money';

/**
 * Pure mapping from ledger.events.v1 envelopes to read-model rows. Amounts leave here as decimal strings of
 * micro-credits (what pg sends for bigint parameters); nothing here touches a float.
 */

/**
 * A ledger.events.v1 envelope as the projection needs it: narrowed by `type` (the payload at its current version,
 * whichever version was sent), position and balance mandatory.
 */
export type LedgerEnvelope = LedgerEventEnvelope & { streamVersion: number; balanceAfter: BalanceSnapshotV1 };

/** The event types that appear in the transaction history, i.e. that move credits or reset the cycle. */
export const TRANSACTION_TYPES = [
  'CreditsGranted',
  'UsageDebited',
  'CreditsExpired',
  'OverdraftSettled',
  'OverdraftIncurred',
  'OverdraftWrittenOff',
  'HoldPlaced',
  'HoldSettled',
  'HoldReleased',
  'CycleStarted',
  'UsageRefunded',
  'GrantVoided',
] as const;
export type TransactionType = (typeof TRANSACTION_TYPES)[number];

/**
 * A `balances` row as the projection writes it: the one declaration of the balance read model's columns
 * (camelCase here, snake_case in the table). Amounts are micro-credits as int8 decimal text, where BalanceSnapshotV1
 * and what clients see carry decimal credit strings: the same TypeScript type in another unit, so the row is
 * declared on its own, not derived from the snapshot, and only balanceRow (credits → micros) and the balance
 * repository (micros → credits) cross between the two.
 */
export interface BalanceRow {
  accountId: string;
  streamVersion: number;
  available: string;
  allowance: string;
  promotional: string;
  purchased: string;
  held: string;
  overdraft: string;
  allocation: string;
  usedThisCycle: string;
  cycleId: string | null;
  /** periodStart of the CycleStarted that opened `cycleId`, when this batch saw it; null = keep what is stored. */
  cycleStart: string | null;
  cycleEnd: string | null;
  planId: string | null;
  unlimited: boolean;
  updatedAt: string;
}

export interface TransactionRow {
  accountId: string;
  streamVersion: number;
  eventId: string;
  type: TransactionType;
  amount: string | null;
  balanceAfter: string;
  occurredAt: string;
  details: Record<string, unknown>;
  /** The API key's name that sent the command (the event's metadata), null when none did. */
  actor: string | null;
}

export interface UsageRecordRow {
  accountId: string;
  usageId: string;
  streamVersion: number;
  occurredAt: string;
  feature: string;
  models: string;
  inputTokens: string;
  outputTokens: string;
  images: number;
  resolution: string | null;
  videoSeconds: number;
  amount: string;
  rateCardVersion: string;
  /** One line per model (a council answer has several), sorted by model: stored as the record's `lines` jsonb. */
  lines: UsageLineRow[];
}

/**
 * A model's part of a usage, as stored in `usage_records.lines` (jsonb; amounts and tokens as decimal strings,
 * micro-credits). `refunded` is this model's part of the usage's refunds (LedgerProjection.applyCorrection).
 */
export interface UsageLineRow {
  model: string;
  amount: string;
  inputTokens: string;
  outputTokens: string;
  refunded: string;
}

const micros = (credits: string): string => parseCredits(credits).toString();
const negative = (credits: string): string => (-parseCredits(credits)).toString();
/** Drops undefined values so the jsonb stays small and a rebuild writes byte-identical documents (one object, no entry arrays). */
function compact(details: Record<string, unknown>): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const key in details) if (Object.hasOwn(details, key) && details[key] !== undefined) kept[key] = details[key];
  return kept;
}

/**
 * Refuses envelopes that lack what the projection keys on; the consumer dead-letters them. An envelope from
 * parseMessage is typed already; one from elsewhere (the rebuild reads the store through the ledger's codec, tests
 * build their own) has its type checked here and its payload trusted as the current version of that type.
 */
export function asLedgerEnvelope(envelope: LedgerEventEnvelope): LedgerEnvelope;
export function asLedgerEnvelope(envelope: Envelope<object>): LedgerEnvelope;
export function asLedgerEnvelope(envelope: Envelope<object>): LedgerEnvelope {
  const issues = [];
  const { streamVersion, balanceAfter, type } = envelope;
  if (!isLedgerEventType(type)) issues.push({ field: 'type', reason: `${type} is not a ledger event` });
  if (streamVersion === undefined || !Number.isInteger(streamVersion) || streamVersion < 1) {
    issues.push({ field: 'streamVersion', reason: 'is required on ledger.events.v1 (a positive integer)' });
  }
  if (!balanceAfter) issues.push({ field: 'balanceAfter', reason: 'is required on ledger.events.v1' });
  if (issues.length > 0) throw new ContractViolation('INVALID_ENVELOPE', issues);
  return envelope as LedgerEnvelope;
}

export function balanceRow(envelope: LedgerEnvelope, cycleStart: string | null): BalanceRow {
  const b = envelope.balanceAfter;
  return {
    accountId: envelope.accountId,
    streamVersion: envelope.streamVersion,
    available: micros(b.available),
    allowance: micros(b.allowance),
    promotional: micros(b.promotional),
    purchased: micros(b.purchased),
    held: micros(b.held),
    overdraft: micros(b.overdraft),
    allocation: micros(b.allocation),
    usedThisCycle: micros(b.usedThisCycle),
    cycleId: b.cycleId ?? null,
    cycleStart,
    cycleEnd: b.cycleEnd ?? null,
    planId: b.planId ?? null,
    unlimited: b.unlimited,
    updatedAt: envelope.occurredAt,
  };
}

/**
 * The amount and details of an event in the transaction history, or undefined for events that are not
 * transactions (AccountOpened, thresholds, depletion, plan changes).
 *
 * The history adds up: `amount` is what the event changes in the account's net balance (available minus
 * overdraft owed), so an account's entries sum to its balance, and each row's `balance_after` is the sum of the
 * entries up to it (see transactionRow). Per type:
 * - CreditsGranted: + the gross grant, including the part that paid off overdraft (a purchase of 10 that repaid
 *   0.25 shows +10); its OverdraftSettled row is informational (no amount) and names the grant. An OverdraftSettled
 *   `fromBucket` (credits the account held paid it from bucket `grantId`) is informational too: it moves nothing net.
 * - UsageDebited: − what the usage costs the account: the buckets it took plus the overdraft it left (its full
 *   price), 0 under an unlimited plan; the price stays in the details. OverdraftIncurred is informational; an
 *   OverdraftWrittenOff gives back the part the plan forgave (+).
 * - CreditsExpired and HoldPlaced: −; HoldReleased: + what was held; HoldSettled: + the whole hold (given back
 *   before the usage that settles it is debited in full).
 * - CycleStarted: no amount (its allowance arrives as CreditsGranted kind=allowance).
 * - UsageRefunded (a correction): + what came back to the account: credits restored to their buckets, reissued,
 *   and overdraft forgiven; a forfeited share (its bucket expired since) or a part never charged moves nothing.
 *   GrantVoided (a correction): − what was left of the grant. Both name what they correct in `details.corrects`
 *   (`{type, usageId | grantId, streamVersion}`), and the corrected entry lists them in `details.corrections`.
 * `unshown` is the part of the entry that the event's own balance snapshot does not reflect yet because a later
 * event of the same decision carries it (a usage's overdraft, incurred just after it) or that it already reflects
 * from an earlier one (a settlement, which the grant after it shows).
 */
export function transactionOf(
  event: LedgerEventPayload,
): { type: TransactionType; amount: string | null; details: Record<string, unknown>; unshown?: bigint } | undefined {
  switch (event.type) {
    case 'AccountOpened':
    case 'LowCreditThresholdCrossed':
    case 'CreditsDepleted':
    case 'PlanChanged':
      return undefined;
    case 'CreditsGranted': {
      const d = event.data;
      const settled = d.overdraftSettled === undefined ? 0n : parseCredits(d.overdraftSettled);
      return {
        type: event.type,
        amount: (parseCredits(d.amount) + settled).toString(),
        details: compact({
          kind: d.kind, grantId: d.grantId, bucketId: d.bucketId, source: d.source, expiresAt: d.expiresAt, paymentReference: d.paymentReference, reason: d.reason,
          overdraftSettled: d.overdraftSettled,
        }),
      };
    }
    case 'UsageDebited': {
      const d = event.data;
      const overdraft = parseCredits(d.overdraft);
      const charged = d.perBucket.reduce((sum, share) => sum + parseCredits(share.amount), 0n) + overdraft;
      return {
        type: event.type,
        amount: (-charged).toString(),
        details: compact({
          usageId: d.usageId,
          feature: d.feature,
          models: d.models,
          price: d.amount,
          overdraft: d.overdraft,
          rateCardVersion: d.pricing.rateCardVersion,
          holdId: d.holdId,
        }),
        unshown: -overdraft,
      };
    }
    case 'CreditsExpired': {
      const d = event.data;
      return { type: event.type, amount: negative(d.amount), details: { bucketId: d.bucketId, kind: d.kind, reason: d.reason } };
    }
    case 'OverdraftSettled': {
      const d = event.data;
      const details = { grantId: d.grantId, settled: d.amount, remainingOverdraft: d.remaining };
      // Paid from credits the account held (fromBucket): its own snapshot shows both sides already, the net unchanged.
      if (d.fromBucket) return { type: event.type, amount: null, details: { ...details, fromBucket: true } };
      return { type: event.type, amount: null, details, unshown: -parseCredits(d.amount) };
    }
    case 'OverdraftIncurred': {
      const d = event.data;
      return { type: event.type, amount: null, details: { usageId: d.usageId, overdraft: d.amount, totalOverdraft: d.total } };
    }
    case 'OverdraftWrittenOff': {
      const d = event.data;
      return { type: event.type, amount: micros(d.amount), details: { usageId: d.usageId, writtenOff: d.amount } };
    }
    case 'HoldPlaced': {
      const d = event.data;
      return { type: event.type, amount: negative(d.amount), details: { holdId: d.holdId, expiresAt: d.expiresAt } };
    }
    case 'HoldSettled': {
      const d = event.data;
      return {
        type: event.type,
        amount: micros(d.heldAmount),
        details: { holdId: d.holdId, usageId: d.usageId, heldAmount: d.heldAmount, settledAmount: d.settledAmount, releasedAmount: d.releasedAmount },
      };
    }
    case 'HoldReleased': {
      const d = event.data;
      return { type: event.type, amount: micros(d.amount), details: { holdId: d.holdId, reason: d.reason } };
    }
    case 'CycleStarted': {
      const d = event.data;
      return {
        type: event.type,
        amount: null,
        details: { cycleId: d.cycleId, planId: d.planId, periodStart: d.periodStart, periodEnd: d.periodEnd, allocation: d.allocation, unlimited: d.unlimited },
      };
    }
    case 'UsageRefunded': {
      const d = event.data;
      const restored = d.restored.reduce((sum, piece) => sum + parseCredits(piece.amount), 0n);
      const forfeited = d.forfeited.reduce((sum, piece) => sum + parseCredits(piece.amount), 0n);
      const reissued = d.reissued ? parseCredits(d.reissued.amount) : 0n;
      return {
        type: event.type,
        amount: (restored + reissued + parseCredits(d.overdraftReduced)).toString(),
        details: compact({
          corrects: { type: 'UsageDebited', usageId: d.usageId },
          refundId: d.refundId,
          usageId: d.usageId,
          refunded: d.amount,
          restored: d.restored,
          forfeited: forfeited > 0n ? d.forfeited : undefined,
          reissued: d.reissued,
          overdraftReduced: parseCredits(d.overdraftReduced) > 0n ? d.overdraftReduced : undefined,
          uncharged: parseCredits(d.uncharged) > 0n ? d.uncharged : undefined,
          restoreExpired: d.restoreExpired,
          reason: d.reason,
        }),
      };
    }
    case 'GrantVoided': {
      const d = event.data;
      return {
        type: event.type,
        amount: negative(d.amount),
        // A refund's reissued bucket (restoreExpired) has the refund's id; any other bucket came from a grant.
        details: { corrects: voidedBucketSource(d.grantId), voidId: d.voidId, grantId: d.grantId, kind: d.kind, voided: d.amount, reason: d.reason },
      };
    }
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}

/** The account's net balance after the event: available minus overdraft owed (negative while in overdraft). */
export function netBalance(balance: BalanceSnapshotV1): bigint {
  return parseCredits(balance.available) - parseCredits(balance.overdraft);
}

export function transactionRow(envelope: LedgerEnvelope): TransactionRow | undefined {
  const transaction = transactionOf(envelope);
  if (!transaction) return undefined;
  const { unshown = 0n, ...row } = transaction;
  return {
    accountId: envelope.accountId,
    streamVersion: envelope.streamVersion,
    eventId: envelope.id,
    ...row,
    balanceAfter: (netBalance(envelope.balanceAfter) + unshown).toString(),
    occurredAt: envelope.occurredAt,
    actor: envelope.actor ?? null,
  };
}

/** By code point, as PostgreSQL's COLLATE "C" orders UTF-8 text (UTF-16 code units would not, above U+FFFF). */
const byCodePoint = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/**
 * One usage record per UsageDebited, its lines one per model. Lines of one model (should a rate card ever split
 * them) are merged; they are sorted by model in code-point order (the migration that moved usage_lines into records
 * used COLLATE "C"), so a record folded again is byte-identical.
 */
export function usageRecordRow(envelope: LedgerEnvelope): UsageRecordRow | undefined {
  if (envelope.type !== 'UsageDebited') return undefined;
  const d = envelope.data;
  const sum = (pick: (line: UsageDebitedV2['pricing']['lines'][number]) => number | undefined): number =>
    d.pricing.lines.reduce((total, line) => total + (pick(line) ?? 0), 0);
  const byModel = new Map<string, UsageLineRow>();
  for (const line of d.pricing.lines) {
    const previous = byModel.get(line.model);
    byModel.set(line.model, {
      model: line.model,
      amount: ((previous ? BigInt(previous.amount) : 0n) + parseCredits(line.amount)).toString(),
      inputTokens: String(Number(previous?.inputTokens ?? 0) + (line.inputTokens ?? 0)),
      outputTokens: String(Number(previous?.outputTokens ?? 0) + (line.outputTokens ?? 0)),
      refunded: '0',
    });
  }
  return {
    accountId: envelope.accountId,
    usageId: d.usageId,
    streamVersion: envelope.streamVersion,
    occurredAt: d.occurredAt,
    feature: d.feature,
    models: d.models.join('+'),
    inputTokens: String(sum((line) => line.inputTokens)),
    outputTokens: String(sum((line) => line.outputTokens)),
    images: sum((line) => line.images),
    resolution: d.pricing.lines.find((line) => line.resolution !== undefined)?.resolution ?? null,
    videoSeconds: sum((line) => line.videoSeconds),
    amount: micros(d.amount),
    rateCardVersion: d.pricing.rateCardVersion,
    lines: [...byModel.values()].sort((a, b) => byCodePoint(a.model, b.model)),
  };
}

/**
 * A correction as the projection links it to what it corrects (LedgerProjection.applyCorrections): the refund takes
 * its amount off the usage record and its models' lines, and both history entries name each other.
 */
/** `amount` in micro-credits (for SQL), `credits` the same as decimal credits (for the history's details). */
export type CorrectionRow =
  | { kind: 'refund'; accountId: string; streamVersion: number; usageId: string; amount: string; credits: string; perModel: { model: string; amount: string }[] }
  | { kind: 'void'; accountId: string; streamVersion: number; grantId: string; amount: string; credits: string };

export function correctionRow(envelope: LedgerEnvelope): CorrectionRow | undefined {
  const { accountId, streamVersion } = envelope;
  if (envelope.type === 'UsageRefunded') {
    const d = envelope.data;
    return { kind: 'refund', accountId, streamVersion, usageId: d.usageId, amount: micros(d.amount), credits: d.amount, perModel: d.perModel.map((m) => ({ model: m.model, amount: micros(m.amount) })) };
  }
  if (envelope.type === 'GrantVoided') {
    const d = envelope.data;
    return { kind: 'void', accountId, streamVersion, grantId: d.grantId, amount: micros(d.amount), credits: d.amount };
  }
  return undefined;
}

/**
 * Everything one batch writes. Balances: one row per account, from its highest stream version in the batch
 * (the database keeps whichever of stored and incoming is newer). Duplicates inside the batch are dropped.
 */
export function projectBatch(envelopes: readonly LedgerEnvelope[]): {
  balances: BalanceRow[];
  transactions: TransactionRow[];
  usageRecords: UsageRecordRow[];
  corrections: CorrectionRow[];
} {
  const corrections = new Map<string, CorrectionRow>();
  const latest = new Map<string, LedgerEnvelope>();
  const cycleStarts = new Map<string, { cycleId: string; periodStart: string; streamVersion: number }>();
  const transactions = new Map<string, TransactionRow>();
  const usageRecords = new Map<string, UsageRecordRow>();
  for (const envelope of envelopes) {
    const { accountId, streamVersion } = envelope;
    const current = latest.get(accountId);
    if (!current || current.streamVersion < streamVersion) latest.set(accountId, envelope);
    if (envelope.type === 'CycleStarted') {
      const d = envelope.data;
      const seen = cycleStarts.get(accountId);
      if (!seen || seen.streamVersion < streamVersion) cycleStarts.set(accountId, { cycleId: d.cycleId, periodStart: d.periodStart, streamVersion });
    }
    const transaction = transactionRow(envelope);
    if (transaction) transactions.set(`${accountId}\u0000${streamVersion}`, transaction);
    const usage = usageRecordRow(envelope);
    if (usage) usageRecords.set(`${accountId}\u0000${usage.usageId}`, usage);
    const correction = correctionRow(envelope);
    if (correction) corrections.set(`${accountId}\u0000${streamVersion}`, correction);
  }
  const balances = [...latest.values()].map((envelope) => {
    const start = cycleStarts.get(envelope.accountId);
    const sameCycle = start && start.cycleId === envelope.balanceAfter.cycleId && start.streamVersion <= envelope.streamVersion;
    return balanceRow(envelope, sameCycle ? start.periodStart : null);
  });
  return {
    balances,
    transactions: [...transactions.values()],
    usageRecords: [...usageRecords.values()],
    // In stream order per account, so two refunds of one usage in a batch apply in order.
    corrections: [...corrections.values()].sort((a, b) => a.accountId.localeCompare(b.accountId) || a.streamVersion - b.streamVersion),
  };
}

/** What a void corrects: the refund that reissued the bucket (`refund:<key>`, its id), or the grant (or purchase) that created it. */
function voidedBucketSource(grantId: string): { type: 'UsageRefunded'; refundId: string } | { type: 'CreditsGranted'; grantId: string } {
  return grantId.startsWith('refund:') ? { type: 'UsageRefunded', refundId: grantId } : { type: 'CreditsGranted', grantId };
}

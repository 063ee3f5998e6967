import { Topics, parseMessage, type BucketKindV1, type Envelope } from '@tally/contracts';
import { formatCredits, parseCredits } from '@tally/money';

/**
 * Builds a plausible ledger.events.v1 stream for one account: stream versions count up, and each envelope
 * carries the balance after it (buckets drained allowance → promotional → purchased, the rest overdraft).
 * Not the ledger's decider: just enough bookkeeping for read-model tests. Every envelope is validated by
 * parseMessage, exactly as the projection consumer receives it.
 */
export interface UsageLineSpec {
  model: string;
  amount: string;
  inputTokens?: number;
  outputTokens?: number;
  images?: number;
  resolution?: string;
  videoSeconds?: number;
}

export interface UsageSpec {
  usageId: string;
  occurredAt: string;
  feature?: string;
  lines: UsageLineSpec[];
  rateCardVersion?: string;
}

export class AccountStream {
  private version = 0;
  private readonly buckets: Record<BucketKindV1, bigint> = { allowance: 0n, promotional: 0n, purchased: 0n };
  private held = 0n;
  private overdraft = 0n;
  private allocation = 0n;
  private used = 0n;
  private cycle: { cycleId: string; periodEnd: string } | null = null;
  private planId: string | null = null;
  private clock: number;

  constructor(
    readonly accountId: string,
    start = '2025-03-01T00:00:00.000Z',
    private readonly validate = true,
  ) {
    this.clock = Date.parse(start);
  }

  get streamVersion(): number {
    return this.version;
  }

  /** Moves the stream's version past `events` written to the read models by other means (a test's bulk insert). */
  skip(events: number): void {
    this.version += events;
  }

  opened(): Envelope<object> {
    return this.emit('AccountOpened', { accountId: this.accountId, openedAt: this.now() });
  }

  cycleStarted(cycleId: string, periodStart: string, periodEnd: string, allocation: string, planId = 'pro'): Envelope<object> {
    this.cycle = { cycleId, periodEnd };
    this.allocation = parseCredits(allocation);
    this.used = 0n;
    this.planId = planId;
    return this.emit('CycleStarted', {
      cycleId, planId, periodStart, periodEnd, allocation, unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry',
    });
  }

  granted(kind: BucketKindV1, amount: string, grantId: string, extra: { paymentReference?: string; expiresAt?: string } = {}): Envelope<object> {
    this.buckets[kind] += parseCredits(amount);
    return this.emit('CreditsGranted', {
      grantId, bucketId: grantId, kind, amount, source: kind === 'purchased' ? 'purchase' : kind === 'allowance' ? 'cycle' : 'promotion', grantedAt: this.now(), ...extra,
    });
  }

  expired(kind: BucketKindV1, bucketId: string, reason = 'cycle-reset'): Envelope<object> {
    const amount = this.buckets[kind];
    this.buckets[kind] = 0n;
    return this.emit('CreditsExpired', { bucketId, kind, amount: formatCredits(amount), reason, expiredAt: this.now() });
  }

  usage(spec: UsageSpec): Envelope<object> {
    const total = spec.lines.reduce((sum, line) => sum + parseCredits(line.amount), 0n);
    let rest = total;
    const perBucket = [];
    for (const kind of ['allowance', 'promotional', 'purchased'] as const) {
      const take = rest < this.buckets[kind] ? rest : this.buckets[kind];
      if (take > 0n) {
        this.buckets[kind] -= take;
        rest -= take;
        perBucket.push({ bucketId: `${kind}-bucket`, kind, amount: formatCredits(take) });
      }
    }
    this.overdraft += rest;
    this.used += total;
    const feature = spec.feature ?? (spec.lines.length > 1 ? 'council' : 'chat');
    return this.emit(
      'UsageDebited',
      {
        usageId: spec.usageId,
        amount: formatCredits(total),
        perBucket,
        overdraft: formatCredits(rest),
        pricing: { rateCardVersion: spec.rateCardVersion ?? '2025-03', lines: spec.lines.map((line) => ({ feature, ...line })) },
        feature,
        models: spec.lines.map((line) => line.model),
        occurredAt: spec.occurredAt,
        debitedAt: spec.occurredAt,
      },
      spec.occurredAt,
    );
  }

  overdraftIncurred(usageId: string, amount: string): Envelope<object> {
    return this.emit('OverdraftIncurred', { usageId, amount, total: formatCredits(this.overdraft) });
  }

  holdPlaced(holdId: string, amount: string): Envelope<object> {
    const micros = parseCredits(amount);
    this.buckets.purchased -= micros;
    this.held += micros;
    return this.emit('HoldPlaced', {
      holdId, amount, perBucket: [{ bucketId: 'purchased-bucket', kind: 'purchased', amount }], expiresAt: new Date(this.clock + 300_000).toISOString(),
    });
  }

  holdReleased(holdId: string, amount: string): Envelope<object> {
    const micros = parseCredits(amount);
    this.buckets.purchased += micros;
    this.held -= micros;
    return this.emit('HoldReleased', { holdId, amount, reason: 'released' });
  }

  /** A refund of `amount` given back to the purchased bucket (a correction). */
  usageRefunded(refundId: string, usageId: string, amount: string, perModel: { model: string; amount: string }[]): Envelope<object> {
    this.buckets.purchased += parseCredits(amount);
    this.used -= parseCredits(amount);
    return this.emit('UsageRefunded', {
      refundId, usageId, amount, restored: [{ bucketId: 'purchased-bucket', kind: 'purchased', amount }], forfeited: [], overdraftReduced: '0', uncharged: '0',
      perModel, restoreExpired: false, reason: 'support ticket', refundedAt: this.now(),
    });
  }

  /** A void of what is left of a grant (a correction). */
  grantVoided(voidId: string, grantId: string, kind: BucketKindV1, amount: string): Envelope<object> {
    this.buckets[kind] -= parseCredits(amount);
    return this.emit('GrantVoided', { voidId, grantId, bucketId: grantId, kind, amount, reason: 'granted by mistake', voidedAt: this.now() });
  }

  thresholdCrossed(thresholdPercent: number): Envelope<object> {
    return this.emit('LowCreditThresholdCrossed', {
      thresholdPercent, cycleId: this.cycle?.cycleId ?? 'none', available: formatCredits(this.available()), allocation: formatCredits(this.allocation),
    });
  }

  private available(): bigint {
    return this.buckets.allowance + this.buckets.promotional + this.buckets.purchased;
  }

  private now(): string {
    this.clock += 1_000;
    return new Date(this.clock).toISOString();
  }

  private emit(type: string, data: object, occurredAt = this.now()): Envelope<object> {
    this.version += 1;
    const raw = {
      id: `${this.accountId}:${this.version}`,
      type,
      version: 1,
      accountId: this.accountId,
      occurredAt,
      data,
      streamVersion: this.version,
      balanceAfter: {
        available: formatCredits(this.available()),
        allowance: formatCredits(this.buckets.allowance),
        promotional: formatCredits(this.buckets.promotional),
        purchased: formatCredits(this.buckets.purchased),
        held: formatCredits(this.held),
        overdraft: formatCredits(this.overdraft),
        allocation: formatCredits(this.allocation),
        usedThisCycle: formatCredits(this.used),
        cycleId: this.cycle?.cycleId ?? null,
        cycleEnd: this.cycle?.periodEnd ?? null,
        planId: this.planId,
        unlimited: false,
      },
    };
    if (!this.validate) return raw as Envelope<object>;
    return parseMessage(Topics.ledgerEvents, JSON.stringify(raw)).envelope;
  }
}

/** Splits a list into consecutive batches of `size`. */
export function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

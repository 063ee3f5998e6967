/**
 * The fault run's workload, derived from the seed alone: which accounts exist, on which plan, and the ordered
 * steps a crowd of clients sends — usage over usage-ingest HTTP and straight to the usage topic (with the same
 * ids sent again: duplicates and redeliveries), grants, purchases, authorizations with holds (settled by usage,
 * released, or left to expire), plan upgrades (each starts a new cycle at once) and a few poison messages.
 * Instants (occurredAt, expiresAt) are fixed when a step is first sent, so a step sent again is the same request.
 */

/** mulberry32: a small, fast seeded generator; the same seed gives the same run. */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i -= 1) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

/** Plans of config/plans.yaml the workload uses, with their allocation (credits) and the next plan up (an upgrade). */
const PLANS: Record<string, { credits: number; upgrade?: string }> = {
  go: { credits: 7, upgrade: 'plus' },
  plus: { credits: 25, upgrade: 'pro-max' },
  'pro-max': { credits: 75 },
  free: { credits: 100, upgrade: 'starter' },
  starter: { credits: 1000, upgrade: 'pro' },
  pro: { credits: 2500 },
  custom: { credits: 0 },
};
/** gpt-4o: 2.5 credits per million input tokens, 10 per million output; with output = input / 4, 5 per million input. */
const MODEL = 'gpt-4o';
const CREDITS_PER_INPUT_TOKEN = 5e-6;

export interface AccountPlan {
  accountId: string;
  /** null: no subscription (grants and purchases only). */
  planId: string | null;
  /** How hard the account spends relative to its credits (some stay above 20%, some run dry into overdraft). */
  intensity: number;
  inputTokens: number;
}

export interface UsageBody {
  id: string;
  accountId: string;
  occurredAt: string;
  feature: 'chat';
  model: string;
  inputTokens: number;
  outputTokens: number;
  holdId?: string;
}

export type Step =
  | { kind: 'usage-http'; key: string; events: UsageBody[] }
  | { kind: 'usage-kafka'; key: string; events: UsageBody[] }
  /** Kafka messages the ledger must dead-letter: a broken envelope, an unpriceable model. */
  | { kind: 'poison'; key: string; value: string }
  | { kind: 'grant'; key: string; accountId: string; amount: string; expiresInSeconds?: number }
  | { kind: 'purchase'; key: string; accountId: string; amount?: string; packId?: string }
  | { kind: 'hold'; key: string; accountId: string; amount: string; ttlSeconds: number; then: 'settle' | 'release' | 'expire'; settleWith: UsageBody }
  | { kind: 'authorize'; key: string; accountId: string; amount: string }
  /** A hold's release, sent after the hold was placed. */
  | { kind: 'release'; key: string; accountId: string; holdId: string }
  | { kind: 'upgrade'; key: string; accountId: string; planId: string };

export interface Workload {
  accounts: AccountPlan[];
  /** Subscriptions and notification settings, sent before the load starts. */
  setup: AccountPlan[];
  steps: Step[];
  /** Distinct usage ids the steps carry (hold settlements included). */
  usageEvents: number;
  poisonKeys: string[];
}

export interface WorkloadSize {
  seed: number;
  events: number;
  accounts: number;
  /** Usage events per HTTP request and per Kafka send. */
  httpBatch: number;
  kafkaBatch: number;
}

const credits = (value: number): string => value.toFixed(6).replace(/\.?0+$/, '');

export function generateWorkload(size: WorkloadSize): Workload {
  const random = new SeededRandom(size.seed);
  const perAccount = size.events / size.accounts;
  const accounts: AccountPlan[] = Array.from({ length: size.accounts }, (_, i) => {
    const accountId = `chaos-${size.seed}-${i}`;
    // One unlimited account and one without a plan; the rest on plans whose allowances the usage runs through.
    const planId = i === 0 ? 'custom' : i === 1 ? null : random.pick(['go', 'plus', 'free', 'starter', 'go', 'plus']);
    const intensity = random.pick([0.5, 0.85, 0.97, 1.3, 2]);
    const budget = planId === null || planId === 'custom' ? 20 : PLANS[planId].credits * 1.3;
    const inputTokens = Math.max(100, Math.round((intensity * budget) / perAccount / CREDITS_PER_INPUT_TOKEN));
    return { accountId, planId, intensity, inputTokens };
  });

  let usageIds = 0;
  const usage = (account: AccountPlan, holdId?: string): UsageBody => {
    const jitter = random.int(80, 120) / 100;
    const inputTokens = Math.max(1, Math.round(account.inputTokens * jitter));
    return {
      id: `u-${size.seed}-${usageIds++}`, accountId: account.accountId, occurredAt: '', feature: 'chat', model: MODEL,
      inputTokens, outputTokens: Math.round(inputTokens / 4), ...(holdId ? { holdId } : {}),
    };
  };

  // The account operations, each placed at a random point of the usage stream.
  const placed: { at: number; step: Step }[] = [];
  let keys = 0;
  const key = (prefix: string) => `${prefix}-${size.seed}-${keys++}`;
  for (const account of accounts) {
    const allocation = account.planId && account.planId !== 'custom' ? PLANS[account.planId].credits : 20;
    const at = () => random.int(0, size.events - 1);
    for (let n = random.int(1, 3); n > 0; n -= 1) {
      placed.push({ at: at(), step: { kind: 'grant', key: key('grant'), accountId: account.accountId, amount: credits(allocation * random.int(5, 40) / 100), ...(random.chance(0.5) ? { expiresInSeconds: random.int(5, 60) } : {}) } });
    }
    for (let n = random.int(0, 2); n > 0; n -= 1) {
      const pack = account.planId === 'starter' && random.chance(0.5);
      placed.push({ at: at(), step: { kind: 'purchase', key: key('pay'), accountId: account.accountId, ...(pack ? { packId: 'pack-1000' } : { amount: credits(allocation * random.int(10, 50) / 100) }) } });
    }
    for (let n = random.int(2, 6); n > 0; n -= 1) {
      const holdId = key('hold');
      const then = random.pick(['settle', 'settle', 'release', 'expire'] as const);
      const settleWith = usage(account, holdId);
      const amount = credits(Math.max(0.000001, settleWith.inputTokens * CREDITS_PER_INPUT_TOKEN * random.int(50, 150) / 100));
      placed.push({ at: at(), step: { kind: 'hold', key: holdId, accountId: account.accountId, amount, ttlSeconds: then === 'expire' ? random.int(2, 8) : 120, then, settleWith } });
    }
    for (let n = random.int(0, 2); n > 0; n -= 1) {
      placed.push({ at: at(), step: { kind: 'authorize', key: key('authz'), accountId: account.accountId, amount: credits(allocation * random.int(1, 30) / 100) } });
    }
    // Upgrades up the ladder: each starts a new cycle at once (the old allowance expires, thresholds re-arm).
    let plan = account.planId;
    for (let n = random.int(0, 2); n > 0 && plan && PLANS[plan]?.upgrade; n -= 1) {
      plan = PLANS[plan].upgrade ?? plan;
      placed.push({ at: random.int(Math.floor(size.events * 0.1), Math.floor(size.events * 0.9)), step: { kind: 'upgrade', key: key('plan'), accountId: account.accountId, planId: plan } });
    }
  }
  placed.sort((a, b) => a.at - b.at);

  // The usage stream: each event to an account (busier accounts more often), in batches over HTTP or Kafka.
  const steps: Step[] = [];
  const sent: UsageBody[] = [];
  let next = 0;
  const flushOps = (upTo: number) => {
    while (next < placed.length && placed[next].at <= upTo) steps.push(placed[next++].step);
  };
  const poisonKeys: string[] = [];
  // A message no consumer can apply: broken JSON first, then usage of a model the rate card does not price.
  const poison = (): Step => {
    const poisonKey = key('poison');
    poisonKeys.push(poisonKey);
    const account = random.pick(accounts).accountId;
    const value = poisonKeys.length === 1
      ? '{"id": "not json'
      : JSON.stringify({ id: poisonKey, type: 'UsageRecorded', version: 1, accountId: account, occurredAt: new Date(0).toISOString(), data: { feature: 'chat', model: 'no-such-model', inputTokens: 1, outputTokens: 1 } });
    return { kind: 'poison', key: poisonKey, value };
  };
  const distinct = size.events;
  let produced = 0;
  while (produced < distinct) {
    const http = random.chance(0.55);
    const batch = Math.min(distinct - produced, http ? size.httpBatch : size.kafkaBatch);
    const events = Array.from({ length: batch }, () => usage(random.pick(accounts)));
    produced += batch;
    // Duplicates: ids already sent, again (same content) over either path; a redelivery of a Kafka batch's tail.
    const again = sent.length > 0 && random.chance(0.3) ? Array.from({ length: random.int(1, 5) }, () => random.pick(sent)) : [];
    steps.push({ kind: http ? 'usage-http' : 'usage-kafka', key: key(http ? 'http' : 'kafka'), events: [...events, ...dedupe(again, events)] });
    sent.push(...events);
    flushOps(produced);
    if (poisonKeys.length < 3 && random.chance(0.02)) steps.push(poison());
  }
  flushOps(Infinity);
  // Every run sends both kinds, so the dead-letter invariant always has something to check (a small workload could
  // draw none at 2% a batch: about one CI seed in twenty did); placed at a seeded point of the load.
  while (poisonKeys.length < 2) steps.splice(random.int(1, steps.length - 1), 0, poison());
  return { accounts, setup: accounts, steps, usageEvents: usageIds, poisonKeys };
}

/** Repeats within one batch must be identical repeats, and not of an id of the same batch (kept simple). */
function dedupe(again: UsageBody[], batch: UsageBody[]): UsageBody[] {
  const inBatch = new Set(batch.map((e) => e.id));
  const seen = new Set<string>();
  return again.filter((e) => !inBatch.has(e.id) && !seen.has(e.id) && seen.add(e.id));
}

import fc from 'fast-check';
import { MAX_AMOUNT_MICROS, MICROS_PER_CREDIT, type Micro } from '@tally/money';
import type { AccountCommand } from '../../account.commands';
import type { OverdraftPolicy } from '../../account.events';
import { ACCOUNT, PRICING } from '../account.fixtures';

/**
 * Seeded command histories as production delivers them to one account: grants, purchases, usage (with and
 * without holds), holds and their release or expiry, cycles (late, twice), plan changes, expiry sweeps with and
 * without a bucket, and also what at-least-once delivery and clients add: redeliveries of any earlier command
 * (at a later time), the same key with other content, amounts at and beyond the bounds (one amount, and bursts
 * that reach the balance bound), clock jumps that let holds and grants expire between commands, and a clock a little behind (another instance);
 * and corrections: refunds (partial, all that is left, beyond it, of expired shares, with restoreExpired) and voids.
 *
 * A history is a list of `SimOp`s (what fast-check generates and shrinks); `toCommands` turns it into the
 * commands and the times the ledger decides them at, deterministically.
 */

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const START = Date.parse('2025-03-01T00:00:00.000Z');

/** An amount: mostly small, sometimes exactly at, just below or just beyond the bounds, zero or negative. */
export const simAmount: fc.Arbitrary<Micro> = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 0, max: 300 }).map((n) => BigInt(n) * MICROS_PER_CREDIT) },
  { weight: 4, arbitrary: fc.bigInt(0n, 50n * MICROS_PER_CREDIT) },
  { weight: 1, arbitrary: fc.constantFrom(MAX_AMOUNT_MICROS, MAX_AMOUNT_MICROS - 1n, MAX_AMOUNT_MICROS + 1n, 0n, 1n, -1n) },
);

const pick = fc.nat(7);
const policy = fc.constantFrom<OverdraftPolicy>('carry', 'carry', 'write-off');
const thresholds: fc.Arbitrary<number[]> = fc.constantFrom<readonly number[]>([20, 5], [20, 5], [50, 20, 5], []).map((t) => [...t]);

export type SimOp =
  | { op: 'grant'; amount: Micro; expiresInMinutes: number | null }
  | { op: 'purchase'; amount: Micro }
  | { op: 'usage'; amount: Micro; hold: number | null; metadata: boolean }
  | { op: 'hold'; amount: Micro; ttlMinutes: number }
  | { op: 'release'; hold: number; reason: 'released' | 'expired' }
  | { op: 'cycle'; allocation: Micro; unlimited: boolean; policy: OverdraftPolicy; thresholds: number[]; lateDays: number }
  | { op: 'plan'; unlimited: boolean; policy: OverdraftPolicy; thresholds: number[] }
  | { op: 'expire'; bucket: number | null }
  /** The same command again, as Kafka or a client retry delivers it: later, same key, same content. */
  | { op: 'redeliver'; which: number }
  /** An earlier command's key with other content. */
  | { op: 'conflict'; which: number }
  | { op: 'wait'; minutes: number }
  | { op: 'jump'; hours: number }
  /**
   * Work under a hold while other usage comes: a purchase of `held`, a hold of it, a usage of `used` without it
   * (carried as overdraft when the rest cannot cover it), then the hold settled for `settled`, or released (null).
   */
  | { op: 'concurrent'; held: Micro; used: Micro; settled: Micro | null }
  /**
   * Time moves to `seconds` after the last cycle's end (one is started first if none has been), its renewal not come
   * yet (the renewal gap), and a hold is asked for; then a usage of `used` comes (deferred to the next allowance), or
   * none; then the renewal with an allowance of `renewal` (which may not cover what was deferred: the other credits
   * pay the rest), or none yet.
   */
  | { op: 'lapse'; seconds: number; amount: Micro; used: Micro | null; renewal: Micro | null }
  /** Another ledger instance whose clock is a little behind decides the next commands. */
  | { op: 'skew'; seconds: number }
  /** `count` purchases of the largest amount: reaches the balance bound in one op. */
  | { op: 'fill'; count: number }
  /** `count` usages of the largest amount: reaches the bound of overdraft or of used this cycle. */
  | { op: 'burst'; count: number }
  /** A refund of one of the usages so far (or of one never seen): all that is left, or an amount; a blank reason sometimes. */
  | { op: 'refund'; usage: number; amount: Micro | null; restoreExpired: boolean; blankReason: boolean }
  /** A void of one of the grants, purchases or allowances so far (or of one never seen). */
  | { op: 'void'; bucket: number }
  /**
   * A second void, under a new key, of the grant voided last (or of one never seen); with none voided yet, the first
   * grant or purchase voided twice: reaches ALREADY_VOIDED in most runs.
   */
  | { op: 'revoid' };

export const simOp: fc.Arbitrary<SimOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('grant' as const), amount: simAmount, expiresInMinutes: fc.option(fc.oneof(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 3 * 24 * 60 }))) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('purchase' as const), amount: simAmount }) },
  { weight: 8, arbitrary: fc.record({ op: fc.constant('usage' as const), amount: simAmount, hold: fc.option(pick), metadata: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('hold' as const), amount: simAmount, ttlMinutes: fc.integer({ min: 0, max: 120 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('release' as const), hold: pick, reason: fc.constantFrom('released' as const, 'expired' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('cycle' as const),
      allocation: simAmount,
      unlimited: fc.integer({ min: 0, max: 9 }).map((d) => d === 0),
      policy,
      thresholds,
      lateDays: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 40 }) }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('plan' as const), unlimited: fc.integer({ min: 0, max: 5 }).map((d) => d === 0), policy, thresholds }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('expire' as const), bucket: fc.option(pick) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('redeliver' as const), which: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('conflict' as const), which: fc.nat(40) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('wait' as const), minutes: fc.integer({ min: 1, max: 90 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('jump' as const), hours: fc.oneof(fc.integer({ min: 1, max: 48 }), fc.integer({ min: 1, max: 45 * 24 })) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('skew' as const), seconds: fc.integer({ min: 1, max: 120 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('concurrent' as const), held: simAmount, used: simAmount, settled: fc.option(simAmount) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('lapse' as const), seconds: fc.integer({ min: 0, max: 600 }), amount: simAmount, used: fc.option(simAmount), renewal: fc.option(simAmount) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('fill' as const), count: fc.integer({ min: 1, max: 101 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('burst' as const), count: fc.integer({ min: 1, max: 101 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('refund' as const),
      usage: fc.nat(9),
      amount: fc.option(simAmount, { freq: 2 }),
      restoreExpired: fc.boolean(),
      blankReason: fc.integer({ min: 0, max: 19 }).map((d) => d === 0),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('void' as const), bucket: fc.nat(9) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('revoid' as const) }) },
);

/** A history of 1 to 60 ops (an op may expand to many commands: fill, burst). */
export const simHistory = fc.array(simOp, { minLength: 1, maxLength: 60 });

export interface SimStep {
  readonly command: AccountCommand;
  readonly now: Date;
}

const iso = (t: number) => new Date(t).toISOString();

/** The commands a history sends, each with the time it is decided at. Deterministic: the same ops, the same steps. */
export function toCommands(ops: readonly SimOp[]): SimStep[] {
  const steps: SimStep[] = [];
  let now = START;
  let n = 0;
  let cycles = 0;
  /** The last cycle's end, once one was sent. */
  let cycleEnd: number | undefined;
  const keyed: AccountCommand[] = [];
  const holds: string[] = [];
  const buckets: string[] = [];
  const usages: string[] = [];
  /** Grant ids a void was sent for, in order. */
  const voided: string[] = [];
  const nth = <T>(list: readonly T[], i: number): T | undefined => (list.length === 0 ? undefined : list[list.length - 1 - (i % list.length)]);
  const send = (command: AccountCommand) => {
    steps.push({ command, now: new Date(now) });
    if (command.type !== 'ReleaseHold' && command.type !== 'ExpireCredits') keyed.push(command);
  };
  const usage = (usageId: string, amount: Micro, extra: { holdId?: string; metadata?: Record<string, string> } = {}): AccountCommand => {
    usages.push(usageId);
    return {
        type: 'RecordUsage',
      accountId: ACCOUNT,
      usageId,
      amount,
      occurredAt: iso(now - MINUTE),
      feature: 'chat',
      models: ['gpt-x'],
      pricing: { rateCardVersion: PRICING.rateCardVersion, lines: [{ model: 'gpt-x', feature: 'chat', inputTokens: 1_000, outputTokens: 200, amount }] },
      ...extra,
    };
  };
  const cycle = (o: Omit<Extract<SimOp, { op: 'cycle' }>, 'op'>): AccountCommand => {
    cycles += 1;
    const start = now - o.lateDays * DAY;
    cycleEnd = start + 30 * DAY;
    buckets.push(`allowance:c${cycles}`);
    return {
      type: 'StartCycle',
      accountId: ACCOUNT,
      cycleId: `c${cycles}`,
      planId: o.unlimited ? 'custom' : 'pro',
      periodStart: iso(start),
      periodEnd: iso(start + 30 * DAY),
      allocation: o.allocation,
      unlimited: o.unlimited,
      thresholds: o.thresholds,
      overdraftPolicy: o.policy,
    };
  };
  const purchase = (ref: string, amount: Micro): AccountCommand => {
    buckets.push(`purchase:${ref}`);
    return { type: 'GrantCredits', accountId: ACCOUNT, grantId: `purchase:${ref}`, kind: 'purchased', amount, source: 'purchase', paymentReference: ref };
  };

  for (const o of ops) {
    n += 1;
    switch (o.op) {
      case 'grant':
        buckets.push(`g${n}`);
        send({
          type: 'GrantCredits',
          accountId: ACCOUNT,
          grantId: `g${n}`,
          kind: 'promotional',
          amount: o.amount,
          source: 'promo:sim',
          reason: `promotion ${n}`,
          ...(o.expiresInMinutes !== null && { expiresAt: iso(now + o.expiresInMinutes * MINUTE) }),
        });
        break;
      case 'purchase':
        send(purchase(`p${n}`, o.amount));
        break;
      case 'usage': {
        const holdId = o.hold === null ? undefined : (nth(holds, o.hold) ?? 'unknown-hold');
        send(usage(`u${n}`, o.amount, { ...(holdId !== undefined && { holdId }), ...(o.metadata && { metadata: { conversationId: `conv-${n}` } }) }));
        break;
      }
      case 'hold':
        holds.push(`h${n}`);
        send({ type: 'PlaceHold', accountId: ACCOUNT, holdId: `h${n}`, amount: o.amount, expiresAt: iso(now + o.ttlMinutes * MINUTE) });
        break;
      case 'release':
        send({ type: 'ReleaseHold', accountId: ACCOUNT, holdId: nth(holds, o.hold) ?? 'unknown-hold', reason: o.reason });
        break;
      case 'cycle':
        send(cycle(o));
        break;
      case 'plan':
        send({ type: 'ChangePlan', accountId: ACCOUNT, changeId: `ch${n}`, planId: o.unlimited ? 'custom' : 'max', unlimited: o.unlimited, thresholds: o.thresholds, overdraftPolicy: o.policy });
        break;
      case 'expire': {
        const bucketId = o.bucket === null ? undefined : (nth(buckets, o.bucket) ?? 'unknown-bucket');
        send({ type: 'ExpireCredits', accountId: ACCOUNT, ...(bucketId !== undefined && { bucketId }) });
        break;
      }
      case 'redeliver': {
        const again = nth(keyed, o.which);
        // A retried authorization computes its expiry again from its TTL, later.
        if (again?.type === 'PlaceHold') send({ ...again, expiresAt: iso(now + 10 * MINUTE) });
        else if (again) send(again);
        break;
      }
      case 'conflict': {
        const first = nth(keyed, o.which);
        if (first) send(otherContent(first));
        break;
      }
      case 'wait':
        now += o.minutes * MINUTE;
        break;
      case 'jump':
        now += o.hours * 60 * MINUTE;
        break;
      case 'concurrent':
        send(purchase(`c${n}`, o.held));
        holds.push(`h${n}`);
        send({ type: 'PlaceHold', accountId: ACCOUNT, holdId: `h${n}`, amount: o.held, expiresAt: iso(now + 10 * MINUTE) });
        send(usage(`u${n}`, o.used));
        if (o.settled === null) send({ type: 'ReleaseHold', accountId: ACCOUNT, holdId: `h${n}`, reason: 'released' });
        else send(usage(`settle${n}`, o.settled, { holdId: `h${n}` }));
        break;
      case 'lapse':
        // An account on a plan first, when none has come yet: a gap needs a cycle with an allowance that ends.
        if (cycleEnd === undefined) send(cycle({ allocation: 100n * MICROS_PER_CREDIT, unlimited: false, policy: 'carry', thresholds: [20, 5], lateDays: 0 }));
        now = Math.max(now, (cycleEnd as number) + o.seconds * 1000);
        holds.push(`h${n}`);
        send({ type: 'PlaceHold', accountId: ACCOUNT, holdId: `h${n}`, amount: o.amount, expiresAt: iso(now + 10 * MINUTE) });
        if (o.used !== null) send(usage(`u${n}`, o.used));
        if (o.renewal !== null) send(cycle({ allocation: o.renewal, unlimited: false, policy: 'carry', thresholds: [20, 5], lateDays: 0 }));
        break;
      case 'skew':
        now -= o.seconds * 1000;
        break;
      case 'fill':
        for (let i = 0; i < o.count; i += 1) send(purchase(`fill${n}-${i}`, MAX_AMOUNT_MICROS));
        break;
      case 'burst':
        for (let i = 0; i < o.count; i += 1) send(usage(`burst${n}-${i}`, MAX_AMOUNT_MICROS));
        break;
      case 'refund':
        send({
          type: 'RefundUsage',
          accountId: ACCOUNT,
          refundId: `refund:r${n}`,
          usageId: nth(usages, o.usage) ?? 'unknown-usage',
          ...(o.amount !== null && { amount: o.amount }),
          reason: o.blankReason ? ' ' : `ticket ${n}`,
          restoreExpired: o.restoreExpired,
        });
        break;
      case 'void': {
        const grantId = nth(buckets, o.bucket) ?? 'unknown-grant';
        // What 'revoid' voids again: a grant or purchase (an allowance is never voided, GRANT_NOT_VOIDABLE).
        if (!grantId.startsWith('allowance:')) voided.push(grantId);
        send({ type: 'VoidGrant', accountId: ACCOUNT, voidId: `void:v${n}`, grantId, reason: `ticket ${n}` });
        break;
      }
      case 'revoid': {
        // None voided yet: the history's first grant or purchase is voided first, then again.
        let grantId = voided[voided.length - 1];
        if (grantId === undefined) {
          grantId = buckets.find((id) => !id.startsWith('allowance:')) ?? 'unknown-grant';
          voided.push(grantId);
          send({ type: 'VoidGrant', accountId: ACCOUNT, voidId: `void:v${n}-first`, grantId, reason: `ticket ${n}` });
        }
        send({ type: 'VoidGrant', accountId: ACCOUNT, voidId: `void:v${n}`, grantId, reason: `ticket ${n}` });
        break;
      }
    }
  }
  return steps;
}

/** The same idempotency key with other content. */
function otherContent(command: AccountCommand): AccountCommand {
  switch (command.type) {
    case 'GrantCredits':
    case 'PlaceHold':
      return { ...command, amount: command.amount + 1n };
    case 'RecordUsage':
      // Priced again by the ledger: the pricing line says the same amount.
      return { ...command, amount: command.amount + 1n, pricing: { ...command.pricing, lines: command.pricing.lines.map((line) => ({ ...line, amount: command.amount + 1n })) } };
    case 'StartCycle':
      return { ...command, allocation: command.allocation + MICROS_PER_CREDIT };
    case 'ChangePlan':
      return { ...command, planId: `${command.planId}-other` };
    case 'ReleaseHold':
    case 'ExpireCredits':
      return command;
    case 'RefundUsage':
    case 'VoidGrant':
      return { ...command, reason: `${command.reason} (other)` };
  }
}

/** A short text of a history's steps, one line each, for a failure message. */
export function describeSteps(steps: readonly SimStep[]): string {
  return steps
    .map(({ command, now }, i) => {
      const { type, accountId: _accountId, ...rest } = command as AccountCommand & Record<string, unknown>;
      const fields = Object.entries(rest)
        .filter(([key]) => key !== 'pricing' && key !== 'models' && key !== 'feature' && key !== 'source' && key !== 'occurredAt')
        .map(([key, value]) => `${key}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`);
      return `  ${String(i + 1).padStart(3)}. ${now.toISOString()} ${type} ${fields.join(' ')}`;
    })
    .join('\n');
}

import fc from 'fast-check';
import type { AccountCommand } from '../account.commands';
import { decide } from '../account.decider';
import { AccountError } from '../account.errors';
import type { AccountEvent } from '../account.events';
import { type AccountState, evolve, initialState } from '../account.state';
import { ACCOUNT, PRICING } from './account.fixtures';

/**
 * Seeded command histories for property tests: grants of every kind with and without expiry, usage (repeated
 * ids included, some settling holds), holds and releases, cycle starts (unlimited, carry or write-off), expiry
 * sweeps and clock jumps, refunds (partial, full, of expired shares) and voids. `play` runs them through decide/evolve as the ledger does.
 */
const HOUR = 3_600_000;
const kind = fc.constantFrom('allowance' as const, 'promotional' as const, 'purchased' as const);
/** Which of the holds placed so far a release or a usage names (modulo their number); may be resolved already. */
const holdPick = fc.nat(5);

export type Op =
  | { op: 'grant'; kind: 'allowance' | 'promotional' | 'purchased'; amount: bigint; expiresInHours: number | null }
  | { op: 'purchase'; amount: bigint }
  | { op: 'usage'; amount: bigint; hold: number | null; repeat: boolean; metadata: boolean }
  | { op: 'plan'; unlimited: boolean; policy: 'carry' | 'write-off' }
  | { op: 'hold'; amount: bigint; expiresInHours: number }
  | { op: 'release'; hold: number }
  | { op: 'cycle'; allocation: bigint; unlimited: boolean; policy: 'carry' | 'write-off' }
  | { op: 'expire' }
  | { op: 'wait'; hours: number }
  | { op: 'refund'; usage: number; amount: bigint | null; restoreExpired: boolean }
  | { op: 'void'; grant: number };

export const accountOp: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('grant' as const), kind, amount: fc.bigInt(1n, 1_000n), expiresInHours: fc.option(fc.integer({ min: 0, max: 48 })) }),
  fc.record({ op: fc.constant('purchase' as const), amount: fc.bigInt(1n, 1_000n) }),
  fc.record({ op: fc.constant('usage' as const), amount: fc.bigInt(0n, 1_500n), hold: fc.option(holdPick), repeat: fc.boolean(), metadata: fc.boolean() }),
  fc.record({ op: fc.constant('plan' as const), unlimited: fc.integer({ min: 0, max: 9 }).map((d) => d < 2), policy: fc.constantFrom('carry' as const, 'write-off' as const) }),
  fc.record({ op: fc.constant('hold' as const), amount: fc.bigInt(1n, 500n), expiresInHours: fc.integer({ min: 0, max: 6 }) }),
  fc.record({ op: fc.constant('release' as const), hold: holdPick }),
  fc.record({
    op: fc.constant('cycle' as const),
    allocation: fc.bigInt(0n, 2_000n),
    unlimited: fc.integer({ min: 0, max: 9 }).map((d) => d < 2),
    policy: fc.constantFrom('carry' as const, 'write-off' as const),
  }),
  fc.record({ op: fc.constant('expire' as const) }),
  fc.record({ op: fc.constant('wait' as const), hours: fc.integer({ min: 1, max: 24 }) }),
  // Corrections: refund (part of) one of the usages so far, void one of the grants so far.
  fc.record({ op: fc.constant('refund' as const), usage: fc.nat(8), amount: fc.option(fc.bigInt(1n, 800n)), restoreExpired: fc.boolean() }),
  fc.record({ op: fc.constant('void' as const), grant: fc.nat(8) }),
);

/**
 * Runs the ops through decide/evolve, like the ledger does, skipping the commands the account refuses.
 * `steps` lists each accepted command with the events it produced, in order.
 */
export interface PlayedStep {
  readonly command: AccountCommand;
  readonly now: Date;
  readonly events: readonly AccountEvent[];
}

export function play(ops: readonly Op[]): { events: AccountEvent[]; state: AccountState; now: Date; steps: PlayedStep[] } {
  let state = initialState;
  let now = new Date('2025-03-01T00:00:00.000Z').getTime();
  const events: AccountEvent[] = [];
  const steps: PlayedStep[] = [];
  const usages: bigint[] = [];
  const holds: string[] = [];
  const grants: string[] = [];
  const pickHold = (i: number): string | undefined => (holds.length > 0 ? holds[holds.length - 1 - (i % holds.length)] : undefined);
  let n = 0;
  const iso = (ms: number) => new Date(ms).toISOString();
  for (const o of ops) {
    n += 1;
    let command: AccountCommand;
    switch (o.op) {
      case 'grant':
        grants.push(`g${n}`);
        command = { type: 'GrantCredits', accountId: ACCOUNT, grantId: `g${n}`, kind: o.kind, amount: o.amount, source: 'prop', ...(o.expiresInHours !== null && { expiresAt: iso(now + o.expiresInHours * HOUR) }) };
        break;
      case 'purchase':
        grants.push(`purchase:p${n}`);
        command = { type: 'GrantCredits', accountId: ACCOUNT, grantId: `purchase:p${n}`, kind: 'purchased', amount: o.amount, source: 'purchase', paymentReference: `p${n}` };
        break;
      case 'usage': {
        const again = o.repeat && usages.length > 0;
        const usageId = again ? `u${usages.length - 1}` : `u${usages.length}`;
        if (!again) usages.push(o.amount);
        command = {
          type: 'RecordUsage', accountId: ACCOUNT, usageId, amount: o.amount, occurredAt: iso(now), feature: 'chat', models: ['gpt-x'],
          pricing: { rateCardVersion: PRICING.rateCardVersion, lines: [{ model: 'gpt-x', feature: 'chat', inputTokens: 1_000, outputTokens: 200, amount: o.amount }] },
          ...(o.hold !== null && holds.length > 0 && { holdId: pickHold(o.hold) }),
          ...(o.metadata && { metadata: { conversationId: `conv-${n}` } }),
        };
        break;
      }
      case 'plan':
        command = { type: 'ChangePlan', accountId: ACCOUNT, changeId: `plan${n}`, planId: o.unlimited ? 'unlimited' : 'pro', unlimited: o.unlimited, thresholds: [20, 5], overdraftPolicy: o.policy };
        break;
      case 'hold':
        holds.push(`h${n}`);
        command = { type: 'PlaceHold', accountId: ACCOUNT, holdId: `h${n}`, amount: o.amount, expiresAt: iso(now + o.expiresInHours * HOUR) };
        break;
      case 'release':
        command = { type: 'ReleaseHold', accountId: ACCOUNT, holdId: pickHold(o.hold) ?? 'none', reason: 'released' };
        break;
      case 'cycle':
        command = { type: 'StartCycle', accountId: ACCOUNT, cycleId: `c${n}`, planId: 'p', periodStart: iso(now), periodEnd: iso(now + 30 * 24 * HOUR), allocation: o.allocation, unlimited: o.unlimited, thresholds: [20, 5], overdraftPolicy: o.policy };
        break;
      case 'expire':
        command = { type: 'ExpireCredits', accountId: ACCOUNT };
        break;
      case 'wait':
        now += o.hours * HOUR;
        continue;
      case 'refund':
        if (usages.length === 0) continue;
        command = {
          type: 'RefundUsage', accountId: ACCOUNT, refundId: `refund:r${n}`, usageId: `u${usages.length - 1 - (o.usage % usages.length)}`,
          ...(o.amount !== null && { amount: o.amount }), reason: 'prop', restoreExpired: o.restoreExpired,
        };
        break;
      case 'void':
        if (grants.length === 0) continue;
        command = { type: 'VoidGrant', accountId: ACCOUNT, voidId: `void:v${n}`, grantId: grants[grants.length - 1 - (o.grant % grants.length)], reason: 'prop' };
        break;
    }
    let decided: AccountEvent[];
    try {
      decided = decide(command, state, { now: new Date(now) });
    } catch (error) {
      if (error instanceof AccountError && ['INSUFFICIENT_CREDITS', 'CYCLE_RENEWAL_PENDING', 'IDEMPOTENCY_CONFLICT', 'INVALID_COMMAND', 'USAGE_NOT_FOUND', 'REFUND_EXCEEDS_DEBIT', 'GRANT_NOT_FOUND', 'GRANT_NOT_VOIDABLE', 'ALREADY_VOIDED'].includes(error.code)) continue;
      throw error;
    }
    events.push(...decided);
    steps.push({ command, now: new Date(now), events: decided });
    state = decided.reduce(evolve, state);
  }
  return { events, state, now: new Date(now), steps };
}

/** A history of 10 to 80 commands. */
export const accountHistory = fc.array(accountOp, { minLength: 10, maxLength: 80, size: 'large' });

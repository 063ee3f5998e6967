import fc from 'fast-check';
import type { AccountCommand } from './account.commands';
import { decide } from './account.decide';
import { AccountError } from './account.errors';
import type { AccountEvent } from './account.events';
import { balanceView } from './account.balance-view';
import { type AccountState, available, evolve, fold, held, initialState } from './account.state';
import { ACCOUNT, PRICING } from './testing/account.fixtures';

const HOUR = 3_600_000;
const kind = fc.constantFrom('allowance' as const, 'promotional' as const, 'purchased' as const);
/** Which of the holds placed so far a release or a usage names (modulo their number); may be resolved already. */
const holdPick = fc.nat(5);

type Op =
  | { op: 'grant'; kind: 'allowance' | 'promotional' | 'purchased'; amount: bigint; expiresInHours: number | null }
  | { op: 'usage'; amount: bigint; hold: number | null; repeat: boolean }
  | { op: 'hold'; amount: bigint; expiresInHours: number }
  | { op: 'release'; hold: number }
  | { op: 'cycle'; allocation: bigint; unlimited: boolean; policy: 'carry' | 'write-off' }
  | { op: 'expire' }
  | { op: 'wait'; hours: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('grant' as const), kind, amount: fc.bigInt(1n, 1_000n), expiresInHours: fc.option(fc.integer({ min: 0, max: 48 })) }),
  fc.record({ op: fc.constant('usage' as const), amount: fc.bigInt(0n, 1_500n), hold: fc.option(holdPick), repeat: fc.boolean() }),
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
);

/** Runs the ops through decide/evolve, like the ledger does, skipping the commands the account refuses. */
function play(ops: readonly Op[]): { events: AccountEvent[]; state: AccountState; now: Date } {
  let state = initialState;
  let now = new Date('2025-03-01T00:00:00.000Z').getTime();
  const events: AccountEvent[] = [];
  const usages: bigint[] = [];
  const holds: string[] = [];
  const pickHold = (i: number): string | undefined => (holds.length > 0 ? holds[holds.length - 1 - (i % holds.length)] : undefined);
  let n = 0;
  const iso = (ms: number) => new Date(ms).toISOString();
  for (const o of ops) {
    n += 1;
    let command: AccountCommand;
    switch (o.op) {
      case 'grant':
        command = { type: 'GrantCredits', accountId: ACCOUNT, grantId: `g${n}`, kind: o.kind, amount: o.amount, source: 'prop', ...(o.expiresInHours !== null && { expiresAt: iso(now + o.expiresInHours * HOUR) }) };
        break;
      case 'usage': {
        const again = o.repeat && usages.length > 0;
        const usageId = again ? `u${usages.length - 1}` : `u${usages.length}`;
        if (!again) usages.push(o.amount);
        command = { type: 'RecordUsage', accountId: ACCOUNT, usageId, amount: o.amount, occurredAt: iso(now), feature: 'chat', models: ['m'], pricing: PRICING, ...(o.hold !== null && holds.length > 0 && { holdId: pickHold(o.hold) }) };
        break;
      }
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
    }
    let decided: AccountEvent[];
    try {
      decided = decide(command, state, { now: new Date(now) });
    } catch (error) {
      if (error instanceof AccountError && ['INSUFFICIENT_CREDITS', 'IDEMPOTENCY_CONFLICT'].includes(error.code)) continue;
      throw error;
    }
    events.push(...decided);
    state = decided.reduce(evolve, state);
  }
  return { events, state, now: new Date(now) };
}

const sum = (values: Iterable<bigint>) => [...values].reduce((a, b) => a + b, 0n);
const ofType = <T extends AccountEvent['type']>(events: AccountEvent[], type: T) =>
  events.filter((e): e is Extract<AccountEvent, { type: T }> => e.type === type);

describe('account decider properties', () => {
  it('conserves credits: granted = available + held + debited from buckets + expired, and nothing goes negative', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 10, maxLength: 80, size: 'large' }), (ops) => {
        const { events, state, now } = play(ops);
        const granted = sum(ofType(events, 'CreditsGranted').map((e) => e.data.amount));
        const debited = sum(ofType(events, 'UsageDebited').flatMap((e) => e.data.perBucket.map((s) => s.amount)));
        const expired = sum(ofType(events, 'CreditsExpired').map((e) => e.data.amount));
        const reserved = sum([...state.holds.values()].flatMap((h) => h.perBucket.map((s) => s.amount)));
        expect(granted).toBe(available(state) + reserved + debited + expired);

        expect(state.buckets.every((b) => b.amount >= 0n)).toBe(true);
        expect(available(state)).toBeGreaterThanOrEqual(0n);
        expect(held(state)).toBeGreaterThanOrEqual(0n);

        // Overdraft carried = incurred - settled; a grant's gross amount = what its bucket got + what it settled.
        const incurred = sum(ofType(events, 'OverdraftIncurred').map((e) => e.data.amount));
        const settled = sum(ofType(events, 'OverdraftSettled').map((e) => e.data.amount));
        expect(state.overdraft).toBe(incurred - settled);
        expect(state.overdraft).toBeGreaterThanOrEqual(0n);
        expect(settled).toBe(sum(ofType(events, 'CreditsGranted').map((e) => e.data.overdraftSettled ?? 0n)));

        // Every usage is accounted for in full: from buckets or as overdraft (unlimited: neither).
        for (const { data } of ofType(events, 'UsageDebited')) {
          const fromBuckets = sum(data.perBucket.map((s) => s.amount));
          expect(fromBuckets + data.overdraft === data.amount || (data.perBucket.length === 0 && data.overdraft === 0n)).toBe(true);
        }

        // Each usage id is debited at most once; replaying the events rebuilds the same state.
        const usageIds = ofType(events, 'UsageDebited').map((e) => e.data.usageId);
        expect(new Set(usageIds).size).toBe(usageIds.length);
        expect(fold(events)).toEqual(state);

        const view = balanceView(state, now);
        expect(view.available).toBe(view.byKind.allowance + view.byKind.promotional + view.byKind.purchased);
        expect(view.available).toBeGreaterThanOrEqual(0n);
      }),
      { numRuns: 300 },
    );
  });

  it('announces a threshold at most once per cycle unless a grant re-arms it', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 10, maxLength: 80, size: 'large' }), (ops) => {
        const { events } = play(ops);
        const announced = new Set<string>();
        for (const event of events) {
          if (event.type === 'CycleStarted') announced.clear();
          if (event.type === 'CreditsGranted') announced.clear(); // may re-arm; checked exactly in the rule tests
          if (event.type === 'LowCreditThresholdCrossed') {
            const key = `${event.data.cycleId}:${event.data.thresholdPercent}`;
            expect(announced.has(key)).toBe(false);
            announced.add(key);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

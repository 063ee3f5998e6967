import type { InjectedFault } from './fault.schedule';
import { cardPrice, fiveHundreds, lagBackToZero, noExitButFaults, rateCardVersions, resendExcused, type CardVersion } from './invariants.harness';
import { CONSUMER_GROUPS, type ServiceSupervisor } from './chaos.harness';
import type { Answer } from './workload.client';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const LAG_BOUND_MS = 60_000;

const answer = (over: Partial<Answer>): Answer => ({
  at: T0, answeredAt: T0 + 5, service: 'ledger', method: 'POST', path: '/v1/accounts/a-1/authorizations', status: 503, retryAfter: '1', ...over,
});

const ledgerKilled: InjectedFault = {
  fault: { kind: 'kill', service: 'ledger' },
  label: 'kill -9 ledger', startedAt: T0 + 1_000, endedAt: T0 + 2_000, detail: '',
  window: { scope: 'ledger', from: T0 + 1_000, until: T0 + 4_000 },
};

describe('invariant 7: no 5xx but a documented 503', () => {
  it('accepts a fault code with Retry-After inside the fault window, and refuses it outside', () => {
    const inside = answer({ at: T0 + 1_500, answeredAt: T0 + 1_600, code: 'DEPENDENCY_UNAVAILABLE' });
    const outside = answer({ code: 'DEPENDENCY_UNAVAILABLE' });

    expect(fiveHundreds({ driver: { answers: [inside] }, faults: [ledgerKilled], lagBoundMs: LAG_BOUND_MS }).failures).toBe(0);
    expect(fiveHundreds({ driver: { answers: [outside] }, faults: [ledgerKilled], lagBoundMs: LAG_BOUND_MS }).failures).toBe(1);
  });

  it('accepts an authorization\'s CYCLE_RENEWAL_PENDING with Retry-After once the cycle it names has ended: the renewal gap of an account, not a fault', () => {
    const gap = answer({ code: 'CYCLE_RENEWAL_PENDING', cycleEnd: new Date(T0).toISOString() });
    const elsewhere = answer({ code: 'CYCLE_RENEWAL_PENDING', cycleEnd: new Date(T0).toISOString(), path: '/v1/accounts/a-1/grants' });

    expect(fiveHundreds({ driver: { answers: [gap] }, faults: [], lagBoundMs: LAG_BOUND_MS })).toMatchObject({ checked: 1, failures: 0 });
    expect(fiveHundreds({ driver: { answers: [elsewhere] }, faults: [], lagBoundMs: LAG_BOUND_MS })).toMatchObject({ checked: 1, failures: 1 });
  });

  it('refuses CYCLE_RENEWAL_PENDING before the cycle\'s end, without one, or long after it outside a fault window', () => {
    const early = answer({ code: 'CYCLE_RENEWAL_PENDING', cycleEnd: new Date(T0 + 60_000).toISOString() });
    const unnamed = answer({ code: 'CYCLE_RENEWAL_PENDING' });
    const stuck = answer({ code: 'CYCLE_RENEWAL_PENDING', cycleEnd: new Date(T0 - 10 * 60_000).toISOString() });

    expect(fiveHundreds({ driver: { answers: [early, unnamed, stuck] }, faults: [], lagBoundMs: LAG_BOUND_MS }).failures).toBe(3);
  });

  it('accepts a CYCLE_RENEWAL_PENDING up to the lag bound after a fault that began while the renewal was due: an outage makes the gap longer', () => {
    const renewalsDown: InjectedFault = { ...ledgerKilled, fault: { kind: 'kill', service: 'subscription-cycle' }, window: { ...ledgerKilled.window, scope: 'subscription-cycle' } };
    const afterOutage = answer({ code: 'CYCLE_RENEWAL_PENDING', cycleEnd: new Date(T0).toISOString(), at: T0 + 62_000, answeredAt: T0 + 62_005 });
    const outageTooLate = answer({ code: 'CYCLE_RENEWAL_PENDING', cycleEnd: new Date(T0 - 10 * 60_000).toISOString(), at: T0 + 1_500, answeredAt: T0 + 1_600 });

    expect(fiveHundreds({ driver: { answers: [afterOutage] }, faults: [], lagBoundMs: LAG_BOUND_MS }).failures).toBe(1);
    expect(fiveHundreds({ driver: { answers: [afterOutage] }, faults: [renewalsDown], lagBoundMs: LAG_BOUND_MS }).failures).toBe(0);
    expect(fiveHundreds({ driver: { answers: [outageTooLate] }, faults: [renewalsDown], lagBoundMs: LAG_BOUND_MS }).failures).toBe(1);
  });

  it('refuses a 503 without Retry-After, and every other 5xx, whatever its code', () => {
    const noRetryAfter = answer({ code: 'CYCLE_RENEWAL_PENDING', retryAfter: null });
    const internal = answer({ status: 500, code: 'CYCLE_RENEWAL_PENDING', at: T0 + 1_500, answeredAt: T0 + 1_600 });

    expect(fiveHundreds({ driver: { answers: [noRetryAfter, internal] }, faults: [ledgerKilled], lagBoundMs: LAG_BOUND_MS }).failures).toBe(2);
  });
});

describe('invariant 7: a request with no answer', () => {
  it('reports a timeout of the client\'s own outside a fault window without failing it, and excuses nothing by a foreign transaction', () => {
    const slow = answer({ status: 0, retryAfter: null, timedOut: true, at: T0 + 60_000, answeredAt: T0 + 70_000 });
    const foreign: InjectedFault = { ...ledgerKilled, fault: { kind: 'foreign-transaction', ms: 20_000 }, window: { scope: 'all', from: T0 + 1_000, until: T0 + 1_000 }, foreign: { event: 'e', relayed: 'e', published: true } };
    const reset = answer({ status: 0, retryAfter: null, at: T0 + 500, answeredAt: T0 + 1_500 });

    expect(fiveHundreds({ driver: { answers: [slow] }, faults: [], lagBoundMs: LAG_BOUND_MS })).toMatchObject({ checked: 0, failures: 0, notes: [expect.stringContaining('1 requests timed out')] });
    expect(fiveHundreds({ driver: { answers: [reset] }, faults: [foreign], lagBoundMs: LAG_BOUND_MS })).toMatchObject({ checked: 1, failures: 1 });
  });

  it('is excused inside a fault window of its service or of everything, and refused outside one', () => {
    const during = answer({ status: 0, retryAfter: null, at: T0 + 1_500, answeredAt: T0 + 11_500 });
    const otherService = answer({ status: 0, retryAfter: null, service: 'usage-ingest', at: T0 + 1_500, answeredAt: T0 + 11_500 });
    const later = answer({ status: 0, retryAfter: null, at: T0 + 60_000, answeredAt: T0 + 70_000 });

    expect(fiveHundreds({ driver: { answers: [during] }, faults: [ledgerKilled], lagBoundMs: LAG_BOUND_MS })).toMatchObject({ checked: 1, failures: 0 });
    expect(fiveHundreds({ driver: { answers: [otherService, later] }, faults: [ledgerKilled], lagBoundMs: LAG_BOUND_MS })).toMatchObject({ checked: 2, failures: 2 });
  });
});

describe('invariant 6: lag back to 0', () => {
  const recovered = (afterLastFaultMs: number, afterLoadMs: number) => new Map(CONSUMER_GROUPS.map(({ name }) => [name, { afterLastFaultMs, afterLoadMs }]));

  it('counts from whichever came later, the last fault or the load sent; never from the end of the resends', () => {
    // Load sent 200 s after the last fault; lag 0 30 s after that.
    expect(lagBackToZero({ lagRecovery: recovered(230_000, 30_000), lagBoundMs: LAG_BOUND_MS }).failures).toBe(0);
    // Last fault 10 s after the load was sent; lag 0 only 5 minutes after both.
    expect(lagBackToZero({ lagRecovery: recovered(300_000, 310_000), lagBoundMs: LAG_BOUND_MS }).failures).toBe(CONSUMER_GROUPS.length);
  });

  it('fails a group never back to 0', () => {
    expect(lagBackToZero({ lagRecovery: new Map(), lagBoundMs: LAG_BOUND_MS }).failures).toBe(CONSUMER_GROUPS.length);
  });
});

describe('invariant 10: no service exited but by a fault', () => {
  const service = (name: string, exits: ServiceSupervisor['unexpectedExits']) => ({ name, unexpectedExits: exits }) as unknown as ServiceSupervisor;

  it('passes when every exit was the run\'s, and names each exit it did not cause', () => {
    const quiet = new Map([['ledger', service('ledger', [])]]) as Map<never, ServiceSupervisor>;
    const crashed = new Map([['notification', service('notification', [{ at: T0, pid: 42, exit: '1' }])]]) as Map<never, ServiceSupervisor>;

    expect(noExitButFaults({ system: { services: quiet } })).toMatchObject({ checked: 1, failures: 0 });
    expect(noExitButFaults({ system: { services: crashed } })).toMatchObject({ failures: 1, examples: [expect.stringContaining('notification (pid 42) exited by itself (1)')] });
  });
});

describe('invariant 4: a notification sent twice', () => {
  const notificationKilled = { window: { scope: 'notification' as const, from: T0 + 10_000, until: T0 + 20_000 } };

  it('is excused only by a fault of notification or of everything around its copies', () => {
    expect(resendExcused([T0 + 9_000, T0 + 21_000], [notificationKilled])).toBe(true);
    expect(resendExcused([T0 + 9_000, T0 + 21_000], [{ window: { ...notificationKilled.window, scope: 'all' } }])).toBe(true);
    expect(resendExcused([T0 + 9_000, T0 + 21_000], [{ window: { ...notificationKilled.window, scope: 'ledger' } }])).toBe(false);
    expect(resendExcused([T0 + 200_000, T0 + 201_000], [notificationKilled])).toBe(false);
    expect(resendExcused([T0 + 1_000, T0 + 2_000], [notificationKilled])).toBe(false);
    expect(resendExcused([T0 + 9_000, T0 + 21_000], [{ window: { ...notificationKilled.window, scope: 'all' }, foreign: { event: 'e', relayed: 'e', published: true } }])).toBe(false);
  });
});

describe('invariant 12: the rate card priced on its own', () => {
  const gpt4o = (input: number, output: number) => ({ model: 'gpt-4o', inputTokens: input, outputTokens: output });

  it('given config/rate-card.yaml, when gpt-4o chat usage is priced, then input × 2.5 + output × 10 credits a million tokens, rounded up once', () => {
    const card = rateCardVersions();
    expect(cardPrice(card, gpt4o(1_000_000, 250_000), '2026-12-01T00:00:00Z')).toBe(5_000_000n);
    // 3 × 2.5 + 1 × 10 = 17.5 µcr: up to 18, once for the event (not 8 + 10 per line).
    expect(cardPrice(card, gpt4o(3, 1), '2026-12-01T00:00:00Z')).toBe(18n);
    expect(cardPrice(card, gpt4o(0, 0), '2026-12-01T00:00:00Z')).toBe(0n);
  });

  it('given two versions, when usage occurred under each, then each is priced by the version in effect then; before the first or for an unpriced model, no price', () => {
    const versions: CardVersion[] = [
      { effectiveFrom: Date.parse('2026-06-01T00:00:00Z'), chat: new Map([['m', { input: 1_000_000n, output: 0n }]]) },
      { effectiveFrom: Date.parse('2026-11-01T00:00:00Z'), chat: new Map([['m', { input: 2_000_000n, output: 0n }]]) },
    ];
    const usage = { model: 'm', inputTokens: 10, outputTokens: 0 };
    expect(cardPrice(versions, usage, '2026-10-31T23:59:59Z')).toBe(10n);
    expect(cardPrice(versions, usage, '2026-11-01T00:00:00Z')).toBe(20n);
    expect(cardPrice(versions, usage, '2026-05-31T00:00:00Z')).toBeUndefined();
    expect(cardPrice(versions, { ...usage, model: 'other' }, '2026-11-02T00:00:00Z')).toBeUndefined();
  });
});

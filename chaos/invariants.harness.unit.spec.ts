import type { InjectedFault } from './fault.schedule';
import { fiveHundreds } from './invariants.harness';
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

import type { InjectedFault } from './fault.schedule';
import { fiveHundreds } from './invariants.harness';
import type { Answer } from './workload.client';

const T0 = Date.parse('2026-12-01T00:00:00Z');

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

    expect(fiveHundreds({ driver: { answers: [inside] }, faults: [ledgerKilled] }).failures).toBe(0);
    expect(fiveHundreds({ driver: { answers: [outside] }, faults: [ledgerKilled] }).failures).toBe(1);
  });

  it('accepts an authorization\'s CYCLE_RENEWAL_PENDING with Retry-After at any time: the renewal gap of an account, not a fault', () => {
    const gap = answer({ code: 'CYCLE_RENEWAL_PENDING' });
    const elsewhere = answer({ code: 'CYCLE_RENEWAL_PENDING', path: '/v1/accounts/a-1/grants' });

    expect(fiveHundreds({ driver: { answers: [gap] }, faults: [] })).toMatchObject({ checked: 1, failures: 0 });
    expect(fiveHundreds({ driver: { answers: [elsewhere] }, faults: [] })).toMatchObject({ checked: 1, failures: 1 });
  });

  it('refuses a 503 without Retry-After, and every other 5xx, whatever its code', () => {
    const noRetryAfter = answer({ code: 'CYCLE_RENEWAL_PENDING', retryAfter: null });
    const internal = answer({ status: 500, code: 'CYCLE_RENEWAL_PENDING', at: T0 + 1_500, answeredAt: T0 + 1_600 });

    expect(fiveHundreds({ driver: { answers: [noRetryAfter, internal] }, faults: [ledgerKilled] }).failures).toBe(2);
  });
});

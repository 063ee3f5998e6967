import { decideNotifications, notificationIdOf, type LedgerEvent, type RecipientSettings } from './decide-notifications';

const both: RecipientSettings = { email: 'ops@example.com', webhookUrl: 'https://hooks.example.com/x', preferences: {} };
const event = (type: string, data: object, id = `evt-${type}`): LedgerEvent => ({ id, type, accountId: 'acc-1', occurredAt: '2026-11-21T10:00:00Z', data });
const threshold = (percent: number, cycleId = 'c-1') =>
  event('LowCreditThresholdCrossed', { thresholdPercent: percent, cycleId, available: '19.5', allocation: '100' }, `evt-${cycleId}-${percent}`);
const cycle = { cycleId: 'c-1', periodEnd: '2026-12-01T00:00:00.000Z', allocation: '100' };

describe('decideNotifications', () => {
  it('a threshold crossing goes to every configured channel, keyed by cycle and threshold, with the reset date', () => {
    const planned = decideNotifications(threshold(20), both, cycle);
    expect(planned.map((p) => p.channel)).toEqual(['email', 'webhook']);
    expect(planned.every((p) => p.dedupeKey === 'cycle:c-1:threshold:20')).toBe(true);
    expect(planned[0].content).toMatchObject({
      type: 'low_credit', accountId: 'acc-1', eventId: 'evt-c-1-20', thresholdPercent: 20, available: '19.5', allocation: '100',
      resetsAt: '2026-12-01T00:00:00.000Z', notificationId: notificationIdOf('acc-1', 'low_credit', 'cycle:c-1:threshold:20'),
    });
  });

  it('the same threshold in the same cycle always yields the same key and id (even from another event id)', () => {
    const a = decideNotifications(threshold(5), both, cycle)[0];
    const b = decideNotifications({ ...threshold(5), id: 'republished' }, both, cycle)[0];
    expect(a.dedupeKey).toBe(b.dedupeKey);
    expect(a.content.notificationId).toBe(b.content.notificationId);
    expect(decideNotifications(threshold(5, 'c-2'), both, cycle)[0].dedupeKey).toBe('cycle:c-2:threshold:5');
  });

  it('does not invent a reset date for a cycle it has not seen', () => {
    expect(decideNotifications(threshold(20, 'c-9'), both, cycle)[0].content.resetsAt).toBeUndefined();
  });

  it('only configured channels get a delivery', () => {
    expect(decideNotifications(threshold(20), { ...both, webhookUrl: null }, cycle).map((p) => p.channel)).toEqual(['email']);
    expect(decideNotifications(threshold(20), { ...both, email: null }, cycle).map((p) => p.channel)).toEqual(['webhook']);
    expect(decideNotifications(threshold(20), undefined, cycle)).toEqual([]);
  });

  it('honours opt-outs, and renewals and receipts are opt-in', () => {
    expect(decideNotifications(threshold(20), { ...both, preferences: { low_credit: false } }, cycle)).toEqual([]);
    const started = event('CycleStarted', {
      cycleId: 'c-2', planId: 'pro', periodStart: '2026-12-01T00:00:00Z', periodEnd: '2027-01-01T00:00:00Z', allocation: '2500', unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry',
    });
    expect(decideNotifications(started, both, cycle)).toEqual([]);
    const renewed = decideNotifications(started, { ...both, preferences: { credits_renewed: true } }, cycle);
    expect(renewed).toHaveLength(2);
    expect(renewed[0]).toMatchObject({ dedupeKey: 'cycle:c-2', content: { type: 'credits_renewed', allocation: '2500', resetsAt: '2027-01-01T00:00:00Z' } });
  });

  it('unlimited plans are never told about renewals', () => {
    const started = event('CycleStarted', { cycleId: 'c-2', planId: 'custom', periodStart: 'x', periodEnd: 'y', allocation: '0', unlimited: true, thresholds: [], overdraftPolicy: 'carry' });
    expect(decideNotifications(started, { ...both, preferences: { credits_renewed: true } }, undefined)).toEqual([]);
  });

  it('purchase receipts only for purchased grants, keyed by grant', () => {
    const prefs = { ...both, preferences: { purchase_receipt: true } };
    const purchased = event('CreditsGranted', { grantId: 'g-1', bucketId: 'b', kind: 'purchased', amount: '1000', source: 'shop', paymentReference: 'pay-1', grantedAt: '2026-11-21T10:00:00Z' });
    expect(decideNotifications(purchased, prefs, cycle)[0]).toMatchObject({ dedupeKey: 'grant:g-1', content: { type: 'purchase_receipt', amount: '1000', paymentReference: 'pay-1' } });
    const promo = event('CreditsGranted', { grantId: 'g-2', bucketId: 'b', kind: 'promotional', amount: '5', source: 'promo', grantedAt: '2026-11-21T10:00:00Z' });
    expect(decideNotifications(promo, prefs, cycle)).toEqual([]);
  });

  it('depletion once per cycle, or per event without a cycle', () => {
    expect(decideNotifications(event('CreditsDepleted', { cycleId: 'c-1', usageId: 'u-1' }), both, cycle)[0]).toMatchObject({
      dedupeKey: 'cycle:c-1', content: { type: 'credits_depleted', available: '0', allocation: '100', resetsAt: cycle.periodEnd },
    });
    expect(decideNotifications(event('CreditsDepleted', { usageId: 'u-1' }, 'evt-9'), both, undefined)[0].dedupeKey).toBe('event:evt-9');
  });

  it('ignores every other ledger event', () => {
    expect(decideNotifications(event('UsageDebited', { usageId: 'u-1' }), both, cycle)).toEqual([]);
  });
});

import type { LedgerEventData, LedgerEventType } from '@tally/contracts';
import { creditsBack, decideNotifications, mayNotify, notificationIdOf, type LedgerEvent, type RecipientSettings } from './notifications.decider';

const both: RecipientSettings = { email: 'ops@example.com', webhookUrl: 'https://hooks.example.com/x', preferences: {} };
// Payloads here carry only what the decision reads (the consumer hands over validated, complete ones).
const event = <K extends LedgerEventType>(type: K, data: Partial<LedgerEventData[K]>, id = `evt-${type}`) =>
  ({ id, type, accountId: 'acc-1', occurredAt: '2026-11-21T10:00:00Z', data }) as unknown as Extract<LedgerEvent, { type: K }>;
const threshold = (percent: number, cycleId = 'c-1') =>
  event('LowCreditThresholdCrossed', { thresholdPercent: percent, cycleId, available: '19.5', allocation: '100' }, `evt-${cycleId}-${percent}`);
const cycle = { cycleId: 'c-1', periodEnd: '2026-12-01T00:00:00.000Z', allocation: '100' };

describe('decideNotifications', () => {
  it('a threshold crossing goes to every configured channel, keyed by cycle, threshold and ledger event, with the reset date', () => {
    const planned = decideNotifications(threshold(20), both, cycle);
    expect(planned.map((p) => p.channel)).toEqual(['email', 'webhook']);
    expect(planned.every((p) => p.dedupeKey === 'cycle:c-1:threshold:20:event:evt-c-1-20')).toBe(true);
    expect(planned[0].content).toMatchObject({
      type: 'low_credit', accountId: 'acc-1', eventId: 'evt-c-1-20', thresholdPercent: 20, available: '19.5', allocation: '100',
      resetsAt: '2026-12-01T00:00:00.000Z', notificationId: notificationIdOf('acc-1', 'low_credit', 'cycle:c-1:threshold:20:event:evt-c-1-20'),
    });
  });

  describe('each crossing the ledger announces is one alert', () => {
    // given: the 20% crossing the ledger announced first, already turned into deliveries
    const first = threshold(20);
    const notified = decideNotifications(first, both, cycle);

    it('when the same event is redelivered or re-published (same id), then it yields the same keys and ids', () => {
      const again = decideNotifications({ ...first, data: { ...first.data } }, both, cycle);
      expect(again.map((p) => p.dedupeKey)).toEqual(notified.map((p) => p.dedupeKey));
      expect(again.map((p) => p.content.notificationId)).toEqual(notified.map((p) => p.content.notificationId));
    });

    it('when a grant re-armed the threshold and the ledger announces it again (a new event), then it is a new alert', () => {
      const recrossed = decideNotifications({ ...threshold(20), id: 'evt-c-1-20-after-purchase', data: { ...first.data, available: '15' } }, both, cycle);
      expect(recrossed).toHaveLength(2);
      expect(recrossed[0].dedupeKey).toBe('cycle:c-1:threshold:20:event:evt-c-1-20-after-purchase');
      expect(recrossed[0].dedupeKey).not.toBe(notified[0].dedupeKey);
      expect(recrossed[0].content.notificationId).not.toBe(notified[0].content.notificationId);
      expect(recrossed[0].content).toMatchObject({ thresholdPercent: 20, available: '15', eventId: 'evt-c-1-20-after-purchase' });
    });

    it('when another cycle crosses the same threshold, then its key names that cycle', () => {
      expect(decideNotifications(threshold(5, 'c-2'), both, cycle)[0].dedupeKey).toBe('cycle:c-2:threshold:5:event:evt-c-2-5');
    });
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

  // subscription-cycle, down for longer than a cycle, starts the cycles it missed late, in order: only the one still
  // under way is news; "a new billing cycle started" of one already over would be sent for each.
  it('a cycle already over when the ledger started it (missed during an outage) is not announced as a renewal', () => {
    const late = { ...event('CycleStarted', {
      cycleId: 'c-2', planId: 'pro', periodStart: '2026-12-01T00:00:00Z', periodEnd: '2027-01-01T00:00:00Z', allocation: '2500', unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry',
    }), occurredAt: '2027-01-15T00:00:00.000Z' };
    expect(decideNotifications(late, { ...both, preferences: { credits_renewed: true } }, cycle)).toEqual([]);
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

  it('a receipt names what was bought, and what of it paid what the account owed: the bucket got only the rest', () => {
    const prefs = { ...both, preferences: { purchase_receipt: true } };
    const owed = event('CreditsGranted', { grantId: 'g-3', bucketId: 'b', kind: 'purchased', amount: '700.5', overdraftSettled: '299.5', source: 'shop', grantedAt: '2026-11-21T10:00:00Z' });
    expect(decideNotifications(owed, prefs, cycle)[0].content).toMatchObject({ amount: '1000', overdraftSettled: '299.5' });
    const allOwed = event('CreditsGranted', { grantId: 'g-4', bucketId: 'b', kind: 'purchased', amount: '0', overdraftSettled: '1000', source: 'shop', grantedAt: '2026-11-21T10:00:00Z' });
    expect(decideNotifications(allOwed, prefs, cycle)[0].content).toMatchObject({ amount: '1000', overdraftSettled: '1000' });
  });

  it('depletion once per depletion event, with or without a cycle (the ledger announces it again only after a grant)', () => {
    expect(decideNotifications(event('CreditsDepleted', { cycleId: 'c-1', usageId: 'u-1' }, 'evt-8'), both, cycle)[0]).toMatchObject({
      dedupeKey: 'event:evt-8', content: { type: 'credits_depleted', available: '0', allocation: '100', resetsAt: cycle.periodEnd },
    });
    expect(decideNotifications(event('CreditsDepleted', { cycleId: 'c-1', usageId: 'u-2' }, 'evt-10'), both, cycle)[0].dedupeKey).toBe('event:evt-10');
    expect(decideNotifications(event('CreditsDepleted', { usageId: 'u-1' }, 'evt-9'), both, undefined)[0].dedupeKey).toBe('event:evt-9');
  });

  it('ignores every other ledger event', () => {
    expect(decideNotifications(event('UsageDebited', { usageId: 'u-1' }), both, cycle)).toEqual([]);
  });

  it('says which events may notify anyone, before the settings are read: a usage never, a crossing, a renewal, a purchase yes', () => {
    expect(mayNotify(event('UsageDebited', { usageId: 'u-1' }))).toBe(false);
    expect(mayNotify(event('HoldPlaced', { holdId: 'h-1' }))).toBe(false);
    expect(mayNotify(event('CreditsGranted', { grantId: 'g-2', kind: 'promotional', amount: '5' }))).toBe(false);
    expect(mayNotify(threshold(20))).toBe(true);
    expect(mayNotify(event('CreditsDepleted', { usageId: 'u-1' }))).toBe(true);
    expect(mayNotify(event('CreditsGranted', { grantId: 'g-1', kind: 'purchased', amount: '5' }))).toBe(true);
    expect(mayNotify(event('CycleStarted', { cycleId: 'c-2', unlimited: false }))).toBe(true);
    expect(mayNotify(event('CycleStarted', { cycleId: 'c-2', unlimited: true }))).toBe(false);
  });

  it('corrections (UsageRefunded, GrantVoided) notify nobody: the alerts they affect come as their own events (a re-armed threshold crossed again)', () => {
    expect(decideNotifications(event('UsageRefunded', { usageId: 'u-1', amount: '2' }), both, cycle)).toEqual([]);
    expect(decideNotifications(event('GrantVoided', { grantId: 'grant:g-1', amount: '5' }), both, cycle)).toEqual([]);
  });
});

describe('creditsBack (the alerts credits coming back make stale)', () => {
  const balance = { available: '65', allowance: '15', promotional: '50', purchased: '0', held: '0', overdraft: '0', allocation: '100', usedThisCycle: '85', cycleId: 'c-1', cycleEnd: null, planId: 'p', unlimited: false };
  const granted = (data: Partial<LedgerEventData['CreditsGranted']>) =>
    ({ ...event('CreditsGranted', { grantId: 'g-1', bucketId: 'g-1', kind: 'promotional', amount: '50', source: 'promo', grantedAt: '2026-11-21T10:00:00Z', ...data }), streamVersion: 12, balanceAfter: balance }) as LedgerEvent;

  it('given a grant that lifts the balance, then its balance after is what makes pending alerts stale', () => {
    expect(creditsBack(granted({ expiresAt: '2026-12-21T10:00:00Z' }))).toEqual({ cycleId: 'c-1', streamVersion: 12, available: 65_000_000n, allocation: 100_000_000n });
    expect(creditsBack(granted({}))).toMatchObject({ available: 65_000_000n });
  });

  it('given a hold released, or settled for less than it held, then what its decision leaves available makes pending alerts stale; settled in whole, nothing came back', () => {
    const hold = (type: 'HoldReleased' | 'HoldSettled', data: object, after: Partial<typeof balance> = {}) =>
      ({ ...event(type, data), streamVersion: 13, balanceAfter: { ...balance, ...after } }) as LedgerEvent;
    expect(creditsBack(hold('HoldReleased', { holdId: 'h-1', amount: '4', reason: 'released' }))).toMatchObject({ streamVersion: 13, available: 65_000_000n });
    // The settle's event counts the whole hold back; its usage (2) is debited right after it, in the same decision.
    expect(creditsBack(hold('HoldSettled', { holdId: 'h-1', usageId: 'u-1', heldAmount: '6', settledAmount: '2', releasedAmount: '4' }))).toMatchObject({ available: 63_000_000n });
    expect(creditsBack(hold('HoldSettled', { holdId: 'h-1', usageId: 'u-1', heldAmount: '6', settledAmount: '6', releasedAmount: '0' }))).toBeUndefined();
  });

  it('given a hold whose credits come back to an account owing more, then nothing is left available: no pending alert is stale', () => {
    // 4 available with a hold of 6 (a 5% alert of 100 waiting): settled for 5.5, 4.5 are left, still below 5%.
    const settled = { ...event('HoldSettled', { holdId: 'h-1', usageId: 'u-1', heldAmount: '6', settledAmount: '5.5', releasedAmount: '0.5' }), streamVersion: 14, balanceAfter: { ...balance, available: '10' } } as LedgerEvent;
    expect(creditsBack(settled)).toMatchObject({ available: 4_500_000n });
    // Owing 10, a hold of 6 released: the credits pay the overdraft, nothing is available.
    const released = { ...event('HoldReleased', { holdId: 'h-2', amount: '6', reason: 'released' }), streamVersion: 15, balanceAfter: { ...balance, available: '6', overdraft: '10' } } as LedgerEvent;
    expect(creditsBack(released)).toMatchObject({ available: 0n });
  });

  it('given a grant that arrived already expired (expired by the same decision), then nothing came back: the ledger re-armed nothing, so no pending alert is stale', () => {
    expect(creditsBack(granted({ expiresAt: '2026-11-21T10:00:00Z' }))).toBeUndefined();
    expect(creditsBack(granted({ expiresAt: '2026-11-20T10:00:00Z' }))).toBeUndefined();
  });
});

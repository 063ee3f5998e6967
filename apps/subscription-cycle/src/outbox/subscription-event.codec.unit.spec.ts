import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseMessage, serializeEnvelope, Topics } from '@tally/contracts';
import { decide, evolve, initialState, parseCatalogue, type SubscriptionState } from '@tally/subscription-domain';
import { rowFromState, stateFromRow } from '../subscriptions/subscription.state';
import { toEnvelopes } from './subscription-event.codec';

const catalogue = parseCatalogue(readFileSync(resolve(__dirname, '../../../../config/plans.yaml'), 'utf8'));
const now = new Date('2027-01-31T15:00:00.000Z');

describe('subscription events as subscription.events.v1 envelopes', () => {
  it('carries the actor that caused the change (the audit trail), which the consumer-side parser accepts', () => {
    const events = decide({ type: 'Subscribe', data: { accountId: 'acct-1', planId: 'go', zone: 'UTC' } }, initialState(), { now, catalogue });
    const [byKey] = toEnvelopes(events, catalogue, now, 'billing-backend');
    expect(byKey.actor).toBe('billing-backend');
    expect(parseMessage(Topics.subscriptionEvents, serializeEnvelope(byKey)).envelope.actor).toBe('billing-backend');
    expect(toEnvelopes(events, catalogue, now)[0]).not.toHaveProperty('actor');
  });

  it('turns Subscribed + CycleStarted into one valid CycleStarted envelope with a decimal allocation', () => {
    const events = decide({ type: 'Subscribe', data: { accountId: 'acct-1', planId: 'go', zone: 'America/New_York' } }, initialState(), { now, catalogue });
    const envelopes = toEnvelopes(events, catalogue, now);
    expect(envelopes).toHaveLength(1);
    const [envelope] = envelopes;
    expect(envelope).toMatchObject({ type: 'CycleStarted', version: 1, accountId: 'acct-1', occurredAt: now.toISOString() });
    expect(envelope.type === 'CycleStarted' && envelope.data.cycleId).toBe(envelope.id);
    expect(envelope.data).toEqual({
      cycleId: envelope.id,
      planId: 'go',
      periodStart: '2027-01-31T15:00:00.000Z',
      periodEnd: '2027-02-28T15:00:00.000Z',
      allocation: '7',
      unlimited: false,
      thresholds: [20, 5],
      overdraftPolicy: 'carry',
    });
    // The consumer-side parser accepts exactly what we publish.
    expect(parseMessage(Topics.subscriptionEvents, serializeEnvelope(envelope)).envelope.id).toBe(envelope.id);
  });

  it('publishes PlanChanged with the new plan\'s rules on an upgrade', () => {
    const subscribed = decide({ type: 'Subscribe', data: { accountId: 'acct-2', planId: 'starter', zone: 'UTC' } }, initialState(), { now, catalogue });
    const state = subscribed.reduce<SubscriptionState>(evolve, initialState());
    const later = new Date('2027-02-10T00:00:00.000Z');
    const events = decide({ type: 'ChangePlan', data: { accountId: 'acct-2', planId: 'custom' } }, state, { now: later, catalogue });
    const envelopes = toEnvelopes(events, catalogue, later);
    expect(envelopes.map((e) => e.type)).toEqual(['PlanChanged', 'CycleStarted']);
    expect(envelopes[0].data).toMatchObject({ planId: 'custom', unlimited: true, thresholds: [] });
    expect(envelopes[1].data).toMatchObject({ planId: 'custom', allocation: '0', unlimited: true, periodStart: later.toISOString() });
    for (const envelope of envelopes) expect(() => parseMessage(Topics.subscriptionEvents, serializeEnvelope(envelope))).not.toThrow();
  });

  it.each([64, 128])('publishes a PlanChanged the ledger accepts for an account id of %i characters (128: the longest allowed) and the longest plan id', (length) => {
    const accountId = 'a'.repeat(length);
    const planId = 'p'.repeat(63); // the longest plan id the catalogue accepts
    const longCatalogue = { ...catalogue, plans: new Map([...catalogue.plans, [planId, { ...(catalogue.plans.get('go') as NonNullable<ReturnType<typeof catalogue.plans.get>>), id: planId }]]) };
    const [envelope] = toEnvelopes(
      [{ type: 'PlanChanged', data: { accountId, fromPlanId: 'go', toPlanId: planId, kind: 'downgrade', anchor: now.toISOString() } }],
      longCatalogue,
      now,
    );
    const parsed = parseMessage(Topics.subscriptionEvents, serializeEnvelope(envelope));
    expect(parsed.envelope.id).toBe(envelope.id);
    expect(parsed.data).toMatchObject({ changeId: envelope.id, planId });
    // Stable: the same change at the same instant has the same id.
    expect(toEnvelopes([{ type: 'PlanChanged', data: { accountId, fromPlanId: 'go', toPlanId: planId, kind: 'downgrade', anchor: now.toISOString() } }], longCatalogue, now)[0].id).toBe(envelope.id);
  });

  it.each([64, 128])('publishes every CycleStarted the ledger accepts for an account id of %i characters and the longest plan id, in any cycle, with stable ids', (length) => {
    const accountId = 'a'.repeat(length);
    const planId = 'p'.repeat(63); // the longest plan id the catalogue accepts
    const longCatalogue = { ...catalogue, plans: new Map([...catalogue.plans, [planId, { ...(catalogue.plans.get('go') as NonNullable<ReturnType<typeof catalogue.plans.get>>), id: planId }]]) };
    const subscribedAt = new Date('2026-01-31T15:00:00.000Z');
    let state = decide({ type: 'Subscribe', data: { accountId, planId, zone: 'UTC' } }, initialState(), { now: subscribedAt, catalogue: longCatalogue })
      .reduce<SubscriptionState>(evolve, initialState());
    const ids = new Set<string>();
    let cycles = 0;
    // Renewal after renewal: the cycle's index grows the readable id (account:anchor:index:plan) by a digit at 10, 100.
    for (let month = 1; month <= 120; month += 1) {
      const due = new Date(Date.UTC(2026, month, 1));
      const events = decide({ type: 'Tick', data: { accountId } }, state, { now: due, catalogue: longCatalogue });
      state = events.reduce<SubscriptionState>(evolve, state);
      for (const envelope of toEnvelopes(events, longCatalogue, due)) {
        expect(parseMessage(Topics.subscriptionEvents, serializeEnvelope(envelope)).envelope.id).toBe(envelope.id);
        expect(envelope.type === 'CycleStarted' && envelope.data.cycleId).toBe(envelope.id);
        ids.add(envelope.id);
        cycles += 1;
        // Stable: deciding the same renewal again names the cycle the same (the ledger grants each cycle once by it).
        expect(toEnvelopes(events, longCatalogue, due)[0].id).toBe(envelope.id);
      }
    }
    // One cycle a month past the subscription's own, each with an id of its own, indexes past 100 included.
    expect(cycles).toBeGreaterThan(100);
    expect(ids.size).toBe(cycles);
  });

  it('round-trips the decider state through the subscriptions row', () => {
    const events = decide({ type: 'Subscribe', data: { accountId: 'acct-3', planId: 'pro', zone: 'Asia/Tokyo' } }, initialState(), { now, catalogue });
    let state = events.reduce<SubscriptionState>(evolve, initialState());
    state = decide({ type: 'Cancel', data: { accountId: 'acct-3' } }, state, { now, catalogue }).reduce<SubscriptionState>(evolve, state);
    if (state.status !== 'active') throw new Error('expected an active subscription');
    const row = rowFromState(state, null);
    expect(row.nextDueAt?.toISOString()).toBe('2027-02-28T15:00:00.000Z');
    expect(row.pendingKind).toBe('cancel');
    expect(stateFromRow(row)).toEqual(state);
  });
});

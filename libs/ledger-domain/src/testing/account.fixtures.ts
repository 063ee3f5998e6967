import { credits } from '@tally/money';
import type { Micro } from '@tally/money';
import type { AccountCommand, GrantCredits, PlaceHold, RecordUsage, StartCycle } from '../account.commands';
import { decide } from '../account.decider';
import { evolve, initialState, type AccountState } from '../account.state';
import type { AccountEvent, BucketKind, BucketShare, CreditsGranted, CycleStarted, UsageDebited } from '../account.events';

/** Builders for the account's commands and events in tests. Amounts in whole credits unless stated. */
export const ACCOUNT = 'acc-1';
export const NOW = new Date('2025-03-10T12:00:00.000Z');
export const AT = NOW.toISOString();
export const CYCLE_START = '2025-03-01T00:00:00.000Z';
export const CYCLE_END = '2025-04-01T00:00:00.000Z';
export const cr = (n: number): Micro => credits(n);

export const opened: AccountEvent = { type: 'AccountOpened', data: { accountId: ACCOUNT, openedAt: '2025-01-01T00:00:00.000Z' } };

export const PRICING = { rateCardVersion: 'rc-2025-03', lines: [{ model: 'gpt-x', feature: 'chat', amount: 0n }] };

export const grantCommand = (grantId: string, kind: BucketKind, amount: Micro, extra: Partial<GrantCredits> = {}): GrantCredits => ({
  type: 'GrantCredits',
  accountId: ACCOUNT,
  grantId,
  kind,
  amount,
  source: `test:${grantId}`,
  ...extra,
});

export const granted = (
  grantId: string,
  kind: BucketKind,
  amount: Micro,
  extra: Partial<CreditsGranted['data']> = {},
): CreditsGranted => ({
  type: 'CreditsGranted',
  data: { grantId, bucketId: grantId, kind, amount, source: `test:${grantId}`, grantedAt: AT, ...extra },
});

export const usageCommand = (usageId: string, amount: Micro, extra: Partial<RecordUsage> = {}): RecordUsage => ({
  type: 'RecordUsage',
  accountId: ACCOUNT,
  usageId,
  amount,
  occurredAt: '2025-03-10T11:59:59.000Z',
  feature: 'chat',
  models: ['gpt-x'],
  pricing: PRICING,
  ...extra,
});

export const debited = (
  usageId: string,
  amount: Micro,
  perBucket: BucketShare[],
  extra: Partial<UsageDebited['data']> = {},
): UsageDebited => ({
  type: 'UsageDebited',
  data: {
    usageId,
    amount,
    perBucket,
    overdraft: 0n,
    pricing: PRICING,
    feature: 'chat',
    models: ['gpt-x'],
    occurredAt: '2025-03-10T11:59:59.000Z',
    debitedAt: AT,
    ...extra,
  },
});

export const share = (bucketId: string, kind: BucketKind, amount: Micro): BucketShare => ({ bucketId, kind, amount });

export const startCycleCommand = (cycleId: string, allocation: Micro, extra: Partial<StartCycle> = {}): StartCycle => ({
  type: 'StartCycle',
  accountId: ACCOUNT,
  cycleId,
  planId: 'pro',
  periodStart: CYCLE_START,
  periodEnd: CYCLE_END,
  allocation,
  unlimited: false,
  thresholds: [20, 5],
  overdraftPolicy: 'carry',
  ...extra,
});

export const cycleStarted = (cycleId: string, allocation: Micro, extra: Partial<CycleStarted['data']> = {}): CycleStarted => ({
  type: 'CycleStarted',
  data: {
    cycleId,
    planId: 'pro',
    periodStart: CYCLE_START,
    periodEnd: CYCLE_END,
    allocation,
    unlimited: false,
    thresholds: [20, 5],
    overdraftPolicy: 'carry',
    ...extra,
  },
});

/** A cycle with its allowance bucket, as StartCycle records it. */
export const cycleWithAllowance = (cycleId: string, allocation: Micro, extra: Partial<CycleStarted['data']> = {}): AccountEvent[] => [
  cycleStarted(cycleId, allocation, extra),
  granted(`allowance:${cycleId}`, 'allowance', allocation, { expiresAt: extra.periodEnd ?? CYCLE_END, source: `plan:${extra.planId ?? 'pro'}` }),
];

export const holdCommand = (holdId: string, amount: Micro, expiresAt = '2025-03-10T12:05:00.000Z'): PlaceHold => ({
  type: 'PlaceHold',
  accountId: ACCOUNT,
  holdId,
  amount,
  expiresAt,
});

/**
 * An account after a purchase and `usages` usage events of 1,000 micro-credits (`usage` reshapes each usage command):
 * it remembers the purchase's key and each usage's debit (which is also the usage's key), as an account does between
 * snapshots.
 */
export function stateAfterUsages(accountId: string, usages: number, usage: (command: RecordUsage) => RecordUsage = (command) => command): AccountState {
  let state = initialState;
  const apply = (command: AccountCommand) => {
    for (const event of decide(command, state, { now: NOW })) state = evolve(state, event);
  };
  apply(grantCommand(`purchase-${accountId}`, 'purchased', 1_000_000_000_000n as Micro, { accountId }));
  for (let i = 0; i < usages; i++) apply(usage(usageCommand(`${accountId}-usage-${i}`, 1_000n as Micro, { accountId })));
  return state;
}

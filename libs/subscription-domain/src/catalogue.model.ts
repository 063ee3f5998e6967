import type { Micro } from '@tally/money';

export type BillingInterval = 'monthly' | 'yearly';
export type OverdraftPolicy = 'carry' | 'write-off';

export interface Plan {
  readonly id: string;
  readonly name: string;
  /** USD as written in the catalogue ("9.99"), and the same in cents. */
  readonly price: string;
  readonly priceCents: bigint;
  /** How the plan is billed; the credit allowance refreshes monthly either way. */
  readonly interval: BillingInterval;
  /** Micro-credits granted at the start of every cycle (0 for unlimited plans). */
  readonly creditsPerMonth: Micro;
  readonly unlimited: boolean;
  /** Percent of the monthly allocation, highest first. */
  readonly alertThresholds: readonly number[];
  readonly overdraftPolicy: OverdraftPolicy;
  /** Higher rank = upgrade. */
  readonly rank: number;
  /**
   * No longer offered (no new subscriptions, no changes to it), still renewed for the accounts on it, who can leave
   * it. How a plan leaves the catalogue: one some subscription holds cannot simply be removed (the service does not
   * start with such a catalogue).
   */
  readonly retired: boolean;
}

export interface CreditPack {
  readonly id: string;
  /** Micro-credits; purchased credits never expire. */
  readonly credits: Micro;
  readonly price: string;
  readonly priceCents: bigint;
}

export interface Catalogue {
  readonly version: string;
  /** The plan a cancelled subscription falls back to. */
  readonly fallbackPlanId: string;
  readonly plans: ReadonlyMap<string, Plan>;
  readonly packs: ReadonlyMap<string, CreditPack>;
}

export const DEFAULT_ALERT_THRESHOLDS: readonly number[] = [20, 5];

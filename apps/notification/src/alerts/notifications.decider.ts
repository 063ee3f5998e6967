import { createHash } from 'node:crypto';
import type { BalanceSnapshotV1, LedgerEventData, LedgerEventType } from '@tally/contracts';
import { formatCredits, parseCredits } from '@tally/money';
import {
  CHANNELS, effectivePreferences, type Channel, type NotificationContent, type NotificationType, type TypePreferences,
} from '../notification-type.model';

/**
 * A ledger event as the consumer hands it over: envelope fields and the payload validated by its contract class
 * (upcast to the current version, whichever the ledger sent), narrowed by `type`.
 */
export type LedgerEvent = {
  [K in LedgerEventType]: { id: string; type: K; accountId: string; occurredAt: string; streamVersion?: number; data: LedgerEventData[K]; balanceAfter?: BalanceSnapshotV1 };
}[LedgerEventType];

/**
 * Credits coming back (a grant, a refund, a hold released or settled for less) re-arm every threshold they lift the
 * balance to and end depletion (the ledger's `rearm` and `rearmAtBoundary`): the account's balance after such an
 * event, when it carries one, for the alerts it makes stale.
 */
export function creditsBack(event: LedgerEvent): { cycleId: string | null; streamVersion: number; available: bigint; allocation: bigint } | undefined {
  if (!givesCreditsBack(event) || !event.balanceAfter || event.streamVersion === undefined) return undefined;
  // A grant that arrived already expired is expired by the same decision (its CreditsExpired follows): it was never
  // spendable, the ledger re-arms nothing for it, and its own balance after (which counts it) says nothing came back.
  if (event.type === 'CreditsGranted' && arrivedExpired(event.data)) return undefined;
  const { cycleId, allocation } = event.balanceAfter;
  return { cycleId: cycleId ?? null, streamVersion: event.streamVersion, available: availableAfterDecision(event, event.balanceAfter), allocation: parseCredits(allocation) };
}

/**
 * What is available once the event's whole decision is made, or less; never more. A hold's event carries the balance
 * right after it, before the rest of its decision: a settle's usage debit (settledAmount) follows it, and credits
 * given back pay the overdraft owed first. Judged on the event's own balance, an alert still true (5 of 100 left, a
 * hold settled for 5.5 of its 6) was cancelled, and the ledger, having re-armed nothing, never announced it again.
 */
function availableAfterDecision(event: LedgerEvent, balanceAfter: BalanceSnapshotV1): bigint {
  const available = parseCredits(balanceAfter.available);
  if (event.type !== 'HoldReleased' && event.type !== 'HoldSettled') return available;
  const spent = event.type === 'HoldSettled' ? parseCredits(event.data.settledAmount) : 0n;
  const left = available - spent - parseCredits(balanceAfter.overdraft);
  return left > 0n ? left : 0n;
}

function givesCreditsBack(event: LedgerEvent): boolean {
  switch (event.type) {
    case 'CreditsGranted':
    case 'UsageRefunded':
    case 'HoldReleased':
      return true;
    case 'HoldSettled':
      return parseCredits(event.data.releasedAmount) > 0n;
    default:
      return false;
  }
}

/** The ledger's rule (account.state's applyGrant): expiring at or before it was granted. */
const arrivedExpired = ({ expiresAt, grantedAt }: { expiresAt?: string; grantedAt: string }): boolean =>
  expiresAt !== undefined && Date.parse(expiresAt) <= Date.parse(grantedAt);

/** Where and what an account wants to hear about. */
export interface RecipientSettings {
  email: string | null;
  webhookUrl: string | null;
  preferences: TypePreferences;
}

/** The account's current billing cycle as last seen on CycleStarted (for the reset date). */
export interface KnownCycle {
  cycleId: string;
  periodEnd: string;
  allocation: string;
}

export interface PlannedDelivery {
  channel: Channel;
  /**
   * With accountId, type and channel, the unique key that makes an alert happen once. Thresholds and depletion
   * are keyed by the ledger event (`cycle:<id>:threshold:<n>:event:<eventId>`, `event:<eventId>`): the ledger
   * disarms a threshold once crossed and re-arms it when a grant lifts the balance, so every crossing it emits is
   * a new alert, and a re-published event (same id) is not. Renewals are `cycle:<id>`, receipts `grant:<id>`.
   */
  dedupeKey: string;
  content: NotificationContent;
}

export const notificationIdOf = (accountId: string, type: NotificationType, dedupeKey: string): string =>
  `ntf_${createHash('sha256').update(`${accountId}\u0000${type}\u0000${dedupeKey}`).digest('hex').slice(0, 32)}`;

/**
 * Whether anyone could be notified of `event` (a usage's debit: never): the consumer reads the account's settings and
 * cycle only for those. What the event says alone decides it; the cycle only adds a reset date.
 */
export const mayNotify = (event: LedgerEvent): boolean => classify(event, undefined) !== undefined;

/**
 * Turns one ledger event and the account's settings into the deliveries to make (one per enabled channel).
 * Pure: no clock, no I/O. Events that concern nobody (other types, no settings, opted out) yield [].
 */
export function decideNotifications(event: LedgerEvent, settings: RecipientSettings | undefined, cycle: KnownCycle | undefined): PlannedDelivery[] {
  const what = classify(event, cycle);
  if (!what || !settings) return [];
  if (!effectivePreferences(settings.preferences)[what.type]) return [];
  const channels = CHANNELS.filter((channel) => (channel === 'email' ? settings.email : settings.webhookUrl));
  const content: NotificationContent = {
    notificationId: notificationIdOf(event.accountId, what.type, what.dedupeKey),
    type: what.type,
    accountId: event.accountId,
    eventId: event.id,
    ...(event.streamVersion !== undefined && { streamVersion: event.streamVersion }),
    occurredAt: event.occurredAt,
    ...what.fields,
  };
  return channels.map((channel) => ({ channel, dedupeKey: what.dedupeKey, content }));
}

interface Classified {
  type: NotificationType;
  dedupeKey: string;
  fields: Partial<NotificationContent>;
}

function classify(event: LedgerEvent, cycle: KnownCycle | undefined): Classified | undefined {
  const resetsAtFor = (cycleId: string | undefined) => (cycleId !== undefined && cycle?.cycleId === cycleId ? cycle.periodEnd : undefined);
  switch (event.type) {
    case 'LowCreditThresholdCrossed': {
      const { cycleId, thresholdPercent, available, allocation } = event.data;
      return {
        type: 'low_credit',
        dedupeKey: `cycle:${cycleId}:threshold:${thresholdPercent}:event:${event.id}`,
        fields: { cycleId, thresholdPercent, available, allocation, resetsAt: resetsAtFor(cycleId) },
      };
    }
    case 'CreditsDepleted': {
      const { cycleId } = event.data;
      return {
        type: 'credits_depleted',
        // Once per depletion the ledger announces (it announces again only after a grant lifted the balance).
        dedupeKey: `event:${event.id}`,
        fields: {
          cycleId, available: '0', resetsAt: resetsAtFor(cycleId),
          allocation: cycleId !== undefined && cycle?.cycleId === cycleId ? cycle.allocation : undefined,
        },
      };
    }
    case 'CycleStarted': {
      const { cycleId, planId, periodStart, periodEnd, allocation, unlimited } = event.data;
      if (unlimited) return undefined;
      // Over already when the ledger started it (a cycle subscription-cycle missed during an outage, started late with
      // the later ones): no renewal to announce.
      if (Date.parse(periodEnd) <= Date.parse(event.occurredAt)) return undefined;
      return {
        type: 'credits_renewed',
        dedupeKey: `cycle:${cycleId}`,
        fields: { cycleId, planId, periodStart, periodEnd, allocation, resetsAt: periodEnd },
      };
    }
    case 'CreditsGranted': {
      const { kind, grantId, amount, overdraftSettled, paymentReference } = event.data;
      if (kind !== 'purchased') return undefined;
      // The event's amount is what the bucket received; what paid the account's debt first is overdraftSettled.
      const settled = overdraftSettled === undefined ? 0n : parseCredits(overdraftSettled);
      const bought = formatCredits(parseCredits(amount) + settled);
      return {
        type: 'purchase_receipt',
        dedupeKey: `grant:${grantId}`,
        fields: { amount: bought, ...(settled > 0n && { overdraftSettled }), paymentReference },
      };
    }
    default:
      return undefined;
  }
}

/**
 * What people can be told about. Low-credit and depleted alerts are on by default (per-type opt-out);
 * renewal and purchase receipts are off by default (opt-in).
 */
export const NOTIFICATION_TYPES = ['low_credit', 'credits_depleted', 'credits_renewed', 'purchase_receipt'] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

export const DEFAULT_ENABLED: Readonly<Record<NotificationType, boolean>> = {
  low_credit: true,
  credits_depleted: true,
  credits_renewed: false,
  purchase_receipt: false,
};

/** The `type` field of webhook bodies: a public contract, do not rename. */
export const WEBHOOK_EVENT_TYPES: Readonly<Record<NotificationType, string>> = {
  low_credit: 'credits.low',
  credits_depleted: 'credits.depleted',
  credits_renewed: 'credits.renewed',
  purchase_receipt: 'credits.purchased',
};

export const CHANNELS = ['email', 'webhook'] as const;
export type Channel = (typeof CHANNELS)[number];

/** Explicit choices stored per account; types not mentioned follow DEFAULT_ENABLED. */
export type TypePreferences = Partial<Record<NotificationType, boolean>>;

export function effectivePreferences(stored: TypePreferences): Record<NotificationType, boolean> {
  return Object.fromEntries(NOTIFICATION_TYPES.map((type) => [type, stored[type] ?? DEFAULT_ENABLED[type]])) as Record<NotificationType, boolean>;
}

/**
 * What is sent, independent of channel; stored on the delivery row and rendered at send time. Amounts are
 * decimal credit strings, times ISO-8601.
 */
export interface NotificationContent {
  /** Stable across channels and retries: the webhook body's `id` and `webhook-id` header. */
  notificationId: string;
  type: NotificationType;
  accountId: string;
  /** The ledger event that caused it. */
  eventId: string;
  /** That event's version in the account's stream (absent on deliveries recorded before it was kept). */
  streamVersion?: number;
  occurredAt: string;
  cycleId?: string;
  thresholdPercent?: number;
  available?: string;
  allocation?: string;
  /** When the allowance resets (end of the current cycle), when known. */
  resetsAt?: string;
  periodStart?: string;
  periodEnd?: string;
  planId?: string;
  /** A receipt: the credits bought (what the bucket received plus what paid the account's debt). */
  amount?: string;
  /** A receipt: the part of `amount` that paid what the account owed (overdraft), when it owed any. */
  overdraftSettled?: string;
  paymentReference?: string;
}

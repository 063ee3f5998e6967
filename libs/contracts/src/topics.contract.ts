/**
 * Kafka topic names. DO NOT CHANGE a released name: consumers and retained data depend on it.
 * A change of meaning gets a new version suffix and a migration plan (both topics live side by side).
 */
export const Topics = {
  /** Usage reported by internal services (HTTP ingest or produced directly). Key: account id. */
  usageEvents: 'usage.events.v1',
  /** Usage messages that can never be applied, with the reason. Key: account id. */
  usageDeadLetter: 'usage.events.dlq.v1',
  /** Plan and billing-cycle facts from subscription-cycle (outbox). Key: account id. */
  subscriptionEvents: 'subscription.events.v1',
  /** Dead letters of subscription.events.v1. */
  subscriptionDeadLetter: 'subscription.events.dlq.v1',
  /** Every event the ledger appended, in stream order per account. Key: account id. */
  ledgerEvents: 'ledger.events.v1',
  /** Dead letters of ledger.events.v1 consumers (projections, notification, subscription-cycle). */
  ledgerDeadLetter: 'ledger.events.dlq.v1',
} as const;

export type TopicName = (typeof Topics)[keyof typeof Topics];

export const ALL_TOPICS: readonly TopicName[] = Object.values(Topics);

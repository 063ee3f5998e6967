import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { Channel, NotificationContent, NotificationType } from '../notification-type.model';

export const DELIVERY_STATES = ['pending', 'delivered', 'failed', 'cancelled'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export interface AttemptRecord {
  at: string;
  /** HTTP status for webhooks, SMTP reply code for email, absent when there was no answer. */
  statusCode?: number;
  error?: string;
  durationMs: number;
}

/**
 * The outbox: one row per (account, type, dedupe key, channel), inserted by the ledger-events consumer in its
 * offsets transaction and worked off by the dispatcher. Also the delivery log.
 */
@Entity({ name: 'deliveries' })
export class DeliveryEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'notification_id', type: 'text' })
  notificationId!: string;

  @Column({ name: 'account_id', type: 'text' })
  accountId!: string;

  @Column({ name: 'notification_type', type: 'text' })
  notificationType!: NotificationType;

  @Column({ name: 'dedupe_key', type: 'text' })
  dedupeKey!: string;

  @Column({ type: 'text' })
  channel!: Channel;

  @Column({ name: 'event_id', type: 'text' })
  eventId!: string;

  @Column({ type: 'jsonb' })
  content!: NotificationContent;

  @Column({ type: 'text' })
  state!: DeliveryState;

  @Column({ type: 'integer' })
  attempts!: number;

  @Column({ name: 'attempt_log', type: 'jsonb' })
  attemptLog!: AttemptRecord[];

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError!: string | null;

  /** When the dispatcher may (re)try; also pushed forward while an attempt is in flight (a lease). */
  @Column({ name: 'next_attempt_at', type: 'timestamptz', nullable: true })
  nextAttemptAt!: Date | null;

  @Column({ name: 'give_up_at', type: 'timestamptz' })
  giveUpAt!: Date;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;

  @Column({ name: 'delivered_at', type: 'timestamptz', nullable: true })
  deliveredAt!: Date | null;

  /** The trace context and request id of the ledger event behind the delivery (`{traceparent, tracestate, requestId}`), null for none. */
  @Column({ name: 'trace_context', type: 'jsonb', nullable: true })
  traceContext!: Record<string, string> | null;
}

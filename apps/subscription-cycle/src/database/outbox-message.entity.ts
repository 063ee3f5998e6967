import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { TraceCarrier } from '@tally/shared';

/**
 * Transactional outbox: envelopes written in the same transaction as the subscription change that produced
 * them, published to Kafka by the relay, then stamped `published_at`.
 */
@Entity({ name: 'outbox_messages' })
export class OutboxMessageEntity {
  /** Publication order; per account it is also commit order (writers hold the subscription row lock). */
  @PrimaryGeneratedColumn({ name: 'id', type: 'bigint' })
  id!: string;

  /** The envelope id (cycle id or change id): unique, so a retried write can never queue a message twice. */
  @Column({ name: 'message_id', type: 'varchar', length: 128, unique: true })
  messageId!: string;

  @Column({ name: 'topic', type: 'varchar', length: 249 })
  topic!: string;

  @Column({ name: 'account_id', type: 'varchar', length: 128 })
  accountId!: string;

  @Column({ name: 'type', type: 'varchar', length: 64 })
  type!: string;

  /** The whole envelope as published. */
  @Column({ name: 'envelope', type: 'jsonb' })
  envelope!: Record<string, unknown>;

  /** The trace context and request id of the work that queued it, published as the message's headers. */
  @Column({ name: 'trace', type: 'jsonb', nullable: true })
  trace!: TraceCarrier | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'published_at', type: 'timestamptz', nullable: true })
  publishedAt!: Date | null;
}

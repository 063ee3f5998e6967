import { Column, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/**
 * One row per account: the subscription decider's state (the decider is pure; this is its persisted fold) and
 * when the scheduler next has work for it.
 */
@Entity({ name: 'subscriptions' })
@Index('subscriptions_next_due_at_idx', ['nextDueAt'])
export class SubscriptionEntity {
  @PrimaryColumn({ name: 'account_id', type: 'varchar', length: 128 })
  accountId!: string;

  @Column({ name: 'plan_id', type: 'varchar', length: 64 })
  planId!: string;

  @Column({ name: 'time_zone', type: 'varchar', length: 64 })
  timeZone!: string;

  /** The billing anchor instant (its wall time in `timeZone` is the reset time). */
  @Column({ name: 'anchor', type: 'timestamptz' })
  anchor!: Date;

  /** Index, under the current anchor, of the last cycle started (-1 right after a new anchor). */
  @Column({ name: 'last_cycle_index', type: 'integer' })
  lastCycleIndex!: number;

  /** Index, under the current anchor, of the first cycle on the current plan (a yearly plan's years count from it). */
  @Column({ name: 'plan_from_cycle', type: 'integer' })
  planFromCycle!: number;

  @Column({ name: 'pending_plan_id', type: 'varchar', length: 64, nullable: true })
  pendingPlanId!: string | null;

  @Column({ name: 'pending_kind', type: 'varchar', length: 16, nullable: true })
  pendingKind!: 'downgrade' | 'cancel' | null;

  @Column({ name: 'pending_effective_at', type: 'timestamptz', nullable: true })
  pendingEffectiveAt!: Date | null;

  /** When the scheduler must next Tick this subscription; null when never. */
  @Column({ name: 'next_due_at', type: 'timestamptz', nullable: true })
  nextDueAt!: Date | null;

  /** When the scheduler parked it, unable to tick it (e.g. its plan not in the catalogue); null once saved again. */
  @Column({ name: 'parked_at', type: 'timestamptz', nullable: true })
  parkedAt!: Date | null;

  /** Why it was parked (the decider's code and message). */
  @Column({ name: 'parked_reason', type: 'text', nullable: true })
  parkedReason!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

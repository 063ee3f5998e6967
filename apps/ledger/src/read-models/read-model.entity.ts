import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { BalanceRow } from '@tally/ledger-read-models';

/**
 * TypeORM views of the read-model tables. The tables are created by the raw-SQL migration beside this file
 * (never synchronize) and written by LedgerProjection with plain SQL; amounts are micro-credits, which pg
 * returns as strings (int8), so they are typed `string` here and parsed with BigInt where arithmetic is needed.
 */
/** A `balances` row as pg reads it back: BalanceRow with its timestamptz columns parsed to Date. */
export type StoredBalanceRow = Omit<BalanceRow, 'cycleStart' | 'cycleEnd' | 'updatedAt'> & {
  cycleStart: Date | null;
  cycleEnd: Date | null;
  updatedAt: Date;
};

/** TypeORM needs a decorated property per column; `implements` keeps them the row's fields and types. */
@Entity({ name: 'balances' })
export class BalanceEntity implements StoredBalanceRow {
  @PrimaryColumn({ name: 'account_id', type: 'varchar', length: 128 }) accountId!: string;
  @Column({ name: 'stream_version', type: 'integer' }) streamVersion!: number;
  @Column({ type: 'bigint' }) available!: string;
  @Column({ type: 'bigint' }) allowance!: string;
  @Column({ type: 'bigint' }) promotional!: string;
  @Column({ type: 'bigint' }) purchased!: string;
  @Column({ type: 'bigint' }) held!: string;
  @Column({ type: 'bigint' }) overdraft!: string;
  @Column({ type: 'bigint' }) allocation!: string;
  @Column({ name: 'used_this_cycle', type: 'bigint' }) usedThisCycle!: string;
  @Column({ name: 'cycle_id', type: 'varchar', length: 200, nullable: true }) cycleId!: string | null;
  @Column({ name: 'cycle_start', type: 'timestamptz', nullable: true }) cycleStart!: Date | null;
  @Column({ name: 'cycle_end', type: 'timestamptz', nullable: true }) cycleEnd!: Date | null;
  @Column({ name: 'plan_id', type: 'varchar', length: 64, nullable: true }) planId!: string | null;
  @Column({ type: 'boolean' }) unlimited!: boolean;
  /** occurredAt of the event that produced this row (not the wall clock), so a rebuild reproduces it. */
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}

@Entity({ name: 'ledger_transactions' })
export class LedgerTransactionEntity {
  @PrimaryColumn({ name: 'account_id', type: 'varchar', length: 128 }) accountId!: string;
  @PrimaryColumn({ name: 'stream_version', type: 'integer' }) streamVersion!: number;
  @Column({ name: 'event_id', type: 'varchar', length: 200 }) eventId!: string;
  @Column({ type: 'varchar', length: 64 }) type!: string;
  /** Signed: credit +, debit −; null for events that move no credits (CycleStarted, OverdraftIncurred, …). */
  @Column({ type: 'bigint', nullable: true }) amount!: string | null;
  /** The net balance right after the event: `available` minus the overdraft owed (negative while it owes). */
  @Column({ name: 'balance_after', type: 'bigint' }) balanceAfter!: string;
  @Column({ name: 'occurred_at', type: 'timestamptz' }) occurredAt!: Date;
  @Column({ type: 'jsonb' }) details!: Record<string, unknown>;
  /** The API key's name that sent the command (audit trail); null when none did. */
  @Column({ type: 'varchar', length: 64, nullable: true }) actor!: string | null;
}

@Entity({ name: 'usage_records' })
export class UsageRecordEntity {
  @PrimaryColumn({ name: 'account_id', type: 'varchar', length: 128 }) accountId!: string;
  @PrimaryColumn({ name: 'usage_id', type: 'varchar', length: 128 }) usageId!: string;
  @Column({ name: 'stream_version', type: 'integer' }) streamVersion!: number;
  @Column({ name: 'occurred_at', type: 'timestamptz' }) occurredAt!: Date;
  @Column({ type: 'varchar', length: 32 }) feature!: string;
  /** The models that answered, joined with '+' (council: several). */
  @Column({ type: 'text' }) models!: string;
  @Column({ name: 'input_tokens', type: 'bigint' }) inputTokens!: string;
  @Column({ name: 'output_tokens', type: 'bigint' }) outputTokens!: string;
  @Column({ type: 'integer' }) images!: number;
  @Column({ type: 'varchar', length: 32, nullable: true }) resolution!: string | null;
  @Column({ name: 'video_seconds', type: 'integer' }) videoSeconds!: number;
  @Column({ type: 'bigint' }) amount!: string;
  @Column({ name: 'rate_card_version', type: 'varchar', length: 64 }) rateCardVersion!: string;
  /** Given back by refunds (UsageRefunded); usage totals count amount − refunded. */
  @Column({ type: 'bigint', default: 0 }) refunded!: string;
  /** Stream version of the last refund applied (makes a redelivered refund a no-op). */
  @Column({ name: 'last_refund_version', type: 'integer', default: 0 }) lastRefundVersion!: number;
  /** One line per model, sorted by model: `{model, amount, inputTokens, outputTokens, refunded}` (decimal strings, micro-credits). */
  @Column({ type: 'jsonb', default: () => "'[]'" }) lines!: { model: string; amount: string; inputTokens: string; outputTokens: string; refunded: string }[];
}

export const READ_MODEL_ENTITIES = [BalanceEntity, LedgerTransactionEntity, UsageRecordEntity];

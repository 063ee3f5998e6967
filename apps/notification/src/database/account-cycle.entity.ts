import { Column, Entity, PrimaryColumn } from 'typeorm';

/** The account's current cycle as last seen on CycleStarted: gives low-credit alerts their reset date. */
@Entity({ name: 'account_cycles' })
export class AccountCycleEntity {
  @PrimaryColumn({ name: 'account_id', type: 'text' })
  accountId!: string;

  @Column({ name: 'cycle_id', type: 'text' })
  cycleId!: string;

  @Column({ name: 'period_start', type: 'timestamptz' })
  periodStart!: Date;

  @Column({ name: 'period_end', type: 'timestamptz' })
  periodEnd!: Date;

  /** Decimal credit string. */
  @Column({ type: 'text' })
  allocation!: string;
}

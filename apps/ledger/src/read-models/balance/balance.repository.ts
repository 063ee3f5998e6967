import { Inject, Injectable } from '@nestjs/common';
import { formatCredits } from '@tally/money';
import { quoteIdentifier } from '@tally/shared';
import type { Pool } from 'pg';
import { LedgerConfig } from '../../config/ledger.config';
import { PG_POOL } from '../../database/tokens.provider';
import { accountNotFound } from '../history/history.errors';
import { checkAccountId } from '../history/history.parser';

interface BalanceDbRow {
  account_id: string;
  stream_version: number;
  available: string;
  allowance: string;
  promotional: string;
  purchased: string;
  held: string;
  overdraft: string;
  allocation: string;
  used_this_cycle: string;
  cycle_id: string | null;
  cycle_start: Date | null;
  cycle_end: Date | null;
  plan_id: string | null;
  unlimited: boolean;
  updated_at: Date;
}

/** The projected balance as the live stream sends it; amounts as decimal credit strings. */
export interface ProjectedBalance {
  accountId: string;
  streamVersion: number;
  available: string;
  allowance: string;
  promotional: string;
  purchased: string;
  held: string;
  overdraft: string;
  allocation: string;
  usedThisCycle: string;
  cycleId: string | null;
  cycleStart: string | null;
  cycleEnd: string | null;
  planId: string | null;
  unlimited: boolean;
  updatedAt: string;
}

const credits = (micros: string): string => formatCredits(BigInt(micros));

/** The balances read model: the account-existence check of every history endpoint, and the live balance. */
@Injectable()
export class BalanceReadRepository {
  private readonly s: string;

  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    config: LedgerConfig,
  ) {
    this.s = quoteIdentifier(config.DATABASE_SCHEMA);
  }

  async find(accountId: string): Promise<ProjectedBalance | undefined> {
    const { rows } = await this.pool.query<BalanceDbRow>(`SELECT * FROM ${this.s}.balances WHERE account_id = $1`, [accountId]);
    const row = rows[0];
    if (!row) return undefined;
    return {
      accountId: row.account_id,
      streamVersion: row.stream_version,
      available: credits(row.available),
      allowance: credits(row.allowance),
      promotional: credits(row.promotional),
      purchased: credits(row.purchased),
      held: credits(row.held),
      overdraft: credits(row.overdraft),
      allocation: credits(row.allocation),
      usedThisCycle: credits(row.used_this_cycle),
      cycleId: row.cycle_id,
      cycleStart: row.cycle_start?.toISOString() ?? null,
      cycleEnd: row.cycle_end?.toISOString() ?? null,
      planId: row.plan_id,
      unlimited: row.unlimited,
      updatedAt: row.updated_at.toISOString(),
    };
  }

  /** Validates the id (400) and returns the balance, or 404 ACCOUNT_NOT_FOUND for an account never seen. */
  async require(accountId: string): Promise<ProjectedBalance> {
    const balance = await this.find(checkAccountId(accountId));
    if (!balance) throw accountNotFound(accountId);
    return balance;
  }
}

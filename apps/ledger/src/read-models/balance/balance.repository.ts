import { Inject, Injectable } from '@nestjs/common';
import type { BalanceSnapshotV1 } from '@tally/contracts';
import { formatCredits } from '@tally/money';
import { quoteIdentifier } from '@tally/shared';
import type { Pool } from 'pg';
import { LedgerConfig } from '../../config/ledger.config';
import { PG_POOL } from '../../database/tokens.provider';
import { accountNotFound } from '../history/history.errors';
import { checkAccountId } from '../history/history.parser';
import type { StoredBalanceRow } from '../read-model.entity';

/** `usedThisCycle` → `used_this_cycle`: a camelCase row type's column names. */
type SnakeCase<S extends string> = S extends `${infer Head}${infer Tail}`
  ? `${Head extends Lowercase<Head> ? Head : `_${Lowercase<Head>}`}${SnakeCase<Tail>}`
  : S;

/** A `balances` row as node-postgres hands it over (`SELECT *`: the table's own column names). */
type BalanceDbRow = { [K in keyof StoredBalanceRow as SnakeCase<K & string>]: StoredBalanceRow[K] };

/**
 * The projected balance as the live stream sends it: the figures of the ledger.events.v1 snapshot (decimal credit
 * strings, converted from the row's micro-credits below), and where the read model stands.
 */
export type ProjectedBalance = BalanceSnapshotV1 & {
  accountId: string;
  streamVersion: number;
  cycleStart: string | null;
  updatedAt: string;
};

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
    return rows[0] && projected(rows[0]);
  }

  /** The balances of these accounts in one query (an account never projected has none). */
  async findMany(accountIds: readonly string[]): Promise<Map<string, ProjectedBalance>> {
    if (accountIds.length === 0) return new Map();
    const { rows } = await this.pool.query<BalanceDbRow>(`SELECT * FROM ${this.s}.balances WHERE account_id = ANY($1::text[])`, [accountIds]);
    return new Map(rows.map((row) => [row.account_id, projected(row)]));
  }

  /** Validates the id (400) and returns the balance, or 404 ACCOUNT_NOT_FOUND for an account never seen. */
  async require(accountId: string): Promise<ProjectedBalance> {
    const balance = await this.find(checkAccountId(accountId));
    if (!balance) throw accountNotFound(accountId);
    return balance;
  }
}

function projected(row: BalanceDbRow): ProjectedBalance {
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

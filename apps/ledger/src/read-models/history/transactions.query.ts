import { Inject, Injectable } from '@nestjs/common';
import { formatCredits } from '@tally/money';
import { quoteIdentifier } from '@tally/shared';
import type { Pool } from 'pg';
import { LedgerConfig } from '../../config/ledger.config';
import { PG_POOL } from '../../database/tokens.provider';
import { BalanceReadRepository } from '../balance/balance.repository';
import { decodeCursor, encodeCursor, parseInstant, parseLimit, parseTypes } from './history.parser';

export interface TransactionsQuery {
  limit?: string;
  cursor?: string;
  type?: string;
  from?: string;
  to?: string;
}

export interface TransactionItem {
  streamVersion: number;
  eventId: string;
  type: string;
  /** Signed decimal credits (credit +, debit −); null for events that move no credits. */
  amount: string | null;
  /** Available credits right after the event. */
  balanceAfter: string;
  occurredAt: string;
  details: Record<string, unknown>;
  /** Who did it: the name of the API key that sent the command; null when none did (subscription events, older events). */
  actor: string | null;
}

export interface TransactionPage {
  items: TransactionItem[];
  nextCursor: string | null;
}

interface TransactionDbRow {
  stream_version: number;
  event_id: string;
  type: string;
  amount: string | null;
  balance_after: string;
  occurred_at: Date;
  details: Record<string, unknown>;
  actor: string | null;
}

@Injectable()
export class TransactionQueryService {
  private readonly s: string;

  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    config: LedgerConfig,
    private readonly balances: BalanceReadRepository,
  ) {
    this.s = quoteIdentifier(config.DATABASE_SCHEMA);
  }

  /** Newest first, keyset-paginated on the stream version (stable while new events arrive). */
  async page(accountId: string, query: TransactionsQuery): Promise<TransactionPage> {
    const limit = parseLimit(query.limit);
    const before = decodeCursor(query.cursor);
    const types = parseTypes(query.type);
    const from = query.from !== undefined ? parseInstant('from', query.from) : undefined;
    const to = query.to !== undefined ? parseInstant('to', query.to) : undefined;
    await this.balances.require(accountId);

    const params: unknown[] = [accountId];
    const where = ['account_id = $1'];
    const add = (sql: (placeholder: string) => string, value: unknown) => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (before !== undefined) add((p) => `stream_version < ${p}`, before);
    if (types) add((p) => `type = ANY(${p}::varchar[])`, types);
    if (from) add((p) => `occurred_at >= ${p}`, from);
    if (to) add((p) => `occurred_at < ${p}`, to);
    params.push(limit + 1);
    const { rows } = await this.pool.query<TransactionDbRow>(
      `SELECT stream_version, event_id, type, amount::text AS amount, balance_after::text AS balance_after, occurred_at, details, actor
         FROM ${this.s}.ledger_transactions
        WHERE ${where.join(' AND ')}
        ORDER BY stream_version DESC
        LIMIT $${params.length}`,
      params,
    );
    const items = rows.slice(0, limit).map((row) => ({
      streamVersion: row.stream_version,
      eventId: row.event_id,
      type: row.type,
      amount: row.amount === null ? null : formatCredits(BigInt(row.amount)),
      balanceAfter: formatCredits(BigInt(row.balance_after)),
      occurredAt: row.occurred_at.toISOString(),
      details: row.details,
      actor: row.actor,
    }));
    return { items, nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1].streamVersion) : null };
  }
}

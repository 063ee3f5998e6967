import { Inject, Injectable } from '@nestjs/common';
import { formatCredits } from '@tally/money';
import { quoteIdentifier } from '@tally/shared';
import type { Pool } from 'pg';
import { LedgerConfig } from '../../config/ledger.config';
import { PG_POOL } from '../../database/tokens.provider';
import { BalanceReadRepository } from '../balance/balance.repository';
import type { TransactionType } from '@tally/ledger-read-models';
import { invalidParam } from './history.errors';
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
  /** The account's net balance right after the event: available minus the overdraft owed (negative while it owes). */
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

/** A page's filters, parsed: all optional but the page size. */
export interface TransactionsFilter {
  /** Entries older than this stream version (the cursor). */
  before?: number;
  types?: readonly TransactionType[];
  from?: Date;
  to?: Date;
  /** Entries in the page; one more is read to tell whether another page follows. */
  limit: number;
}

/** The statement behind a page of an account's history (exported so a test can measure exactly what it reads). */
export function transactionsPageSql(schema: string, accountId: string, filter: TransactionsFilter): { text: string; values: unknown[] } {
  const values: unknown[] = [accountId];
  const where = ['account_id = $1'];
  const add = (sql: (placeholder: string) => string, value: unknown) => {
    values.push(value);
    where.push(sql(`$${values.length}`));
  };
  if (filter.before !== undefined) add((p) => `stream_version < ${p}`, filter.before);
  if (filter.types) add((p) => `type = ANY(${p}::varchar[])`, filter.types);
  // Spelled out for the partial index on the entries other than usage (HistoryByType1765600000000): a plan made for
  // any array of types could not assume it, and without it a page of grants reads every usage row of the account.
  if (filter.types && !filter.types.includes('UsageDebited')) where.push(`type <> 'UsageDebited'`);
  if (filter.from) add((p) => `occurred_at >= ${p}`, filter.from);
  if (filter.to) add((p) => `occurred_at < ${p}`, filter.to);
  values.push(filter.limit + 1);
  return {
    text: `SELECT stream_version, event_id, type, amount::text AS amount, balance_after::text AS balance_after, occurred_at, details, actor
             FROM ${quoteIdentifier(schema)}.ledger_transactions
            WHERE ${where.join(' AND ')}
            ORDER BY stream_version DESC
            LIMIT $${values.length}`,
    values,
  };
}

@Injectable()
export class TransactionQueryService {
  private readonly schema: string;

  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    config: LedgerConfig,
    private readonly balances: BalanceReadRepository,
  ) {
    this.schema = config.DATABASE_SCHEMA;
  }

  /** Newest first, keyset-paginated on the stream version (stable while new events arrive). */
  async page(accountId: string, query: TransactionsQuery): Promise<TransactionPage> {
    const limit = parseLimit(query.limit);
    const filter: TransactionsFilter = {
      before: decodeCursor(query.cursor),
      types: parseTypes(query.type),
      from: query.from !== undefined ? parseInstant('from', query.from) : undefined,
      to: query.to !== undefined ? parseInstant('to', query.to) : undefined,
      limit,
    };
    // As the usage summary does: a reversed (or empty) range is the caller's mistake, not an empty page.
    if (filter.from && filter.to && filter.from.getTime() >= filter.to.getTime()) throw invalidParam('from', 'from must be before to');
    await this.balances.require(accountId);
    const { rows } = await this.pool.query<TransactionDbRow>(transactionsPageSql(this.schema, accountId, filter));
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

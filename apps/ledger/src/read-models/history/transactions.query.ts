import { Inject, Injectable } from '@nestjs/common';
import { formatCredits } from '@tally/money';
import { quoteIdentifier } from '@tally/shared';
import type { Pool } from 'pg';
import { LedgerConfig } from '../../config/ledger.config';
import { PG_POOL } from '../../database/tokens.provider';
import { BalanceReadRepository } from '../balance/balance.repository';
import type { TransactionType } from '@tally/ledger-read-models';
import { invalidParam } from './history.errors';
import { decodeCursor, encodeCursor, parseInstant, parseLimit, parseTypes, type HistoryCursor } from './history.parser';

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
  /** Microseconds since 1970, exact (a Date keeps milliseconds): a time-ordered page's cursor. */
  occurred_at_us: string;
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
  /** Entries after this one in the page's order (the cursor). */
  after?: HistoryCursor;
  types?: readonly TransactionType[];
  from?: Date;
  to?: Date;
  /** Entries in the page; one more is read to tell whether another page follows. */
  limit: number;
}

/**
 * Whether a page is read in time order: one asked for a time window. Newest first by stream version would read every
 * entry on the far side of the window to find its first ones (an index by version knows nothing of time, and one by
 * time gives the entries in another order): half an account's history for a window in its middle.
 */
export const byTime = (filter: Pick<TransactionsFilter, 'from' | 'to'>): boolean => filter.from !== undefined || filter.to !== undefined;

/** The statement behind a page of an account's history (exported so a test can measure exactly what it reads). */
export function transactionsPageSql(schema: string, accountId: string, filter: TransactionsFilter): { text: string; values: unknown[] } {
  const values: unknown[] = [accountId];
  const where = ['account_id = $1'];
  const add = (sql: (placeholder: string) => string, value: unknown) => {
    values.push(value);
    where.push(sql(`$${values.length}`));
  };
  const timeOrder = byTime(filter);
  const after = filter.after;
  if (after?.kind === 'version') add((p) => `stream_version < ${p}`, after.streamVersion);
  if (after?.kind === 'time') {
    values.push(after.occurredAtUs.toString());
    const at = `timestamptz 'epoch' + $${values.length}::bigint * interval '1 microsecond'`;
    add((p) => `(occurred_at, stream_version) < (${at}, ${p})`, after.streamVersion);
  }
  if (filter.types) add((p) => `type = ANY(${p}::varchar[])`, filter.types);
  // Spelled out for the partial index on the entries other than usage (HistoryByType1765600000000): a plan made for
  // any array of types could not assume it, and without it a page of grants reads every usage row of the account.
  if (filter.types && !filter.types.includes('UsageDebited')) where.push(`type <> 'UsageDebited'`);
  if (filter.from) add((p) => `occurred_at >= ${p}`, filter.from);
  if (filter.to) add((p) => `occurred_at < ${p}`, filter.to);
  values.push(filter.limit + 1);
  return {
    text: `SELECT stream_version, event_id, type, amount::text AS amount, balance_after::text AS balance_after, occurred_at,
                  (extract(epoch FROM occurred_at) * 1000000)::bigint::text AS occurred_at_us, details, actor
             FROM ${quoteIdentifier(schema)}.ledger_transactions
            WHERE ${where.join(' AND ')}
            ORDER BY ${timeOrder ? 'occurred_at DESC, stream_version DESC' : 'stream_version DESC'}
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

  /**
   * Newest first, keyset-paginated (stable while new events arrive): by stream version, or with `from`/`to` by time
   * (`occurredAt`, then stream version; the two orders differ only where appends of one account overlapped).
   */
  async page(accountId: string, query: TransactionsQuery): Promise<TransactionPage> {
    const limit = parseLimit(query.limit);
    const filter: TransactionsFilter = {
      after: decodeCursor(query.cursor),
      types: parseTypes(query.type),
      from: query.from !== undefined ? parseInstant('from', query.from) : undefined,
      to: query.to !== undefined ? parseInstant('to', query.to) : undefined,
      limit,
    };
    // As the usage summary does: a reversed (or empty) range is the caller's mistake, not an empty page.
    if (filter.from && filter.to && filter.from.getTime() >= filter.to.getTime()) throw invalidParam('from', 'from must be before to');
    if (filter.after && (filter.after.kind === 'time') !== byTime(filter)) {
      throw invalidParam('cursor', 'is the cursor of a page asked for with other filters: with from or to, pages are in time order');
    }
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
    if (rows.length <= limit) return { items, nextCursor: null };
    const last = rows[limit - 1];
    const cursor: HistoryCursor = byTime(filter)
      ? { kind: 'time', occurredAtUs: BigInt(last.occurred_at_us), streamVersion: last.stream_version }
      : { kind: 'version', streamVersion: last.stream_version };
    return { items, nextCursor: encodeCursor(cursor) };
  }
}

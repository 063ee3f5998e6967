import { Inject, Injectable } from '@nestjs/common';
import { inTransaction } from '@tally/ledger-read-models';
import { formatCredits } from '@tally/money';
import { quoteIdentifier } from '@tally/shared';
import type { Pool, PoolClient } from 'pg';
import { LedgerConfig } from '../../config/ledger.config';
import { PG_POOL } from '../../database/tokens.provider';
import { BalanceReadRepository } from '../balance/balance.repository';
import { invalidParam } from './history.errors';
import { DEFAULT_USAGE_DAYS, cycleRange, parseRange, parseZone, zoneDays, type RangeQuery, type ZonedRange } from './history.parser';

export interface UsageBucket {
  credits: string;
  requests: number;
}

export interface UsageSummary {
  from: string;
  to: string;
  /** The IANA time zone of `byDay`'s days (the request's `tz`, by its canonical name; UTC by default). */
  timeZone: string;
  totals: UsageBucket;
  byModel: (UsageBucket & { model: string })[];
  byFeature: (UsageBucket & { feature: string })[];
  /** Days in `timeZone` that had usage, oldest first (days without usage are left out). */
  byDay: (UsageBucket & { day: string })[];
}

interface GroupedRow {
  grouping: number;
  feature: string | null;
  /** The day's position among the days from the range's first usage to its last (width_bucket over their starts), from 1. */
  day: number | null;
  credits: string;
  requests: string;
}

const bucket = (row: { credits: string; requests: string }): UsageBucket => ({ credits: formatCredits(BigInt(row.credits)), requests: Number(row.requests) });

@Injectable()
export class UsageQueryService {
  private readonly s: string;

  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    config: LedgerConfig,
    private readonly balances: BalanceReadRepository,
  ) {
    this.s = quoteIdentifier(config.DATABASE_SCHEMA);
  }

  /**
   * Resolves `period`/`from`/`to` for an existing account (404 otherwise); `cycle` reads the stored cycle. `maxDays`:
   * the longest range taken (a portal token's, PORTAL_MAX_RANGE_DAYS).
   */
  async resolveRange(accountId: string, query: RangeQuery, defaultDays: number | undefined, maxDays?: number, now = new Date()): Promise<ZonedRange> {
    const request = parseRange(query, now, defaultDays, maxDays);
    const timeZone = parseZone(query.tz);
    const balance = await this.balances.require(accountId);
    if (request.kind === 'range') return { ...request.range, timeZone };
    const range = cycleRange(balance.cycleStart ? new Date(balance.cycleStart) : null, balance.cycleEnd ? new Date(balance.cycleEnd) : null);
    if (!range) throw invalidParam('period', 'the account has no billing cycle');
    return { ...range, timeZone };
  }

  /** `read` on one connection in a read-only REPEATABLE READ transaction: its statements see one snapshot. */
  private inOneSnapshot<T>(read: (client: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, async (tx) => {
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      return read(tx);
    });
  }

  async summary(accountId: string, query: RangeQuery, maxDays?: number): Promise<UsageSummary> {
    const range = await this.resolveRange(accountId, query, DEFAULT_USAGE_DAYS, maxDays);
    const params = [accountId, range.from, range.to];
    // Credits are net of refunds (README "Corrections"); a refunded usage still counts as a request made.
    // The days are the zone's by Node's zone database (zoneDays), between the range's first and last usage: each usage
    // falls in the day whose start it follows (width_bucket). One pass over the usage records for totals, features and
    // days (grouping sets), one over their lines for models, all in one snapshot: a projection batch committing between
    // them would make the models disagree with the totals.
    const result = await this.inOneSnapshot(async (client) => {
      const span = await client.query<{ first: Date | null; last: Date | null }>(
        `SELECT min(occurred_at) AS first, max(occurred_at) AS last FROM ${this.s}.usage_records WHERE account_id = $1 AND occurred_at >= $2 AND occurred_at < $3`,
        params,
      );
      const { first, last } = span.rows[0];
      if (!first || !last) return undefined;
      const days = zoneDays(first, last, range.timeZone);
      const [grouped, models] = await Promise.all([
        client.query<GroupedRow>(
          `SELECT GROUPING(feature, day) AS grouping, feature, day, coalesce(sum(amount), 0)::text AS credits, count(*)::text AS requests
             FROM (SELECT feature, width_bucket(occurred_at, $4::timestamptz[]) AS day, amount - refunded AS amount
                     FROM ${this.s}.usage_records
                    WHERE account_id = $1 AND occurred_at >= $2 AND occurred_at < $3) usage
            GROUP BY GROUPING SETS ((), (feature), (day))
            ORDER BY grouping, sum(amount) DESC, feature COLLATE "C", day`,
          [...params, days.map((day) => day.start)],
        ),
        client.query<{ model: string; credits: string; requests: string }>(
          `SELECT line.model, sum(line.amount - line.refunded)::text AS credits, count(*)::text AS requests
             FROM ${this.s}.usage_records r CROSS JOIN LATERAL jsonb_to_recordset(r.lines) AS line(model varchar, amount bigint, refunded bigint)
            WHERE r.account_id = $1 AND r.occurred_at >= $2 AND r.occurred_at < $3
            GROUP BY line.model
            ORDER BY sum(line.amount - line.refunded) DESC, line.model COLLATE "C"`,
          params,
        ),
      ]);
      return { grouped, models, days };
    });
    const period = { from: range.from.toISOString(), to: range.to.toISOString(), timeZone: range.timeZone };
    if (!result) return { ...period, totals: { credits: '0', requests: 0 }, byModel: [], byFeature: [], byDay: [] };
    const { grouped, models, days } = result;
    const totals = grouped.rows.find((row) => row.grouping === 3);
    return {
      ...period,
      totals: totals ? bucket(totals) : { credits: '0', requests: 0 },
      byModel: models.rows.map((row) => ({ model: row.model, ...bucket(row) })),
      byFeature: grouped.rows.filter((row) => row.grouping === 1).map((row) => ({ feature: row.feature as string, ...bucket(row) })),
      // Every usage is at or after the first day's start: its position is from 1.
      byDay: grouped.rows
        .filter((row) => row.grouping === 2)
        .sort((a, b) => (a.day as number) - (b.day as number))
        .map((row) => ({ day: days[(row.day as number) - 1].day, ...bucket(row) })),
    };
  }
}

import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import { stringify } from 'csv-stringify';
import { formatCredits } from '@tally/money';
import { quoteIdentifier } from '@tally/shared';
import type { Pool } from 'pg';
import { LedgerConfig } from '../../config/ledger.config';
import { PG_POOL } from '../../database/tokens.provider';
import type { TimeRange } from './history.parser';

export const USAGE_CSV_COLUMNS = [
  'occurred_at', 'usage_id', 'feature', 'model', 'input_tokens', 'output_tokens', 'images', 'resolution', 'video_seconds', 'credits', 'rate_card_version',
] as const;

interface ExportDbRow {
  occurred_at: string;
  usage_id: string;
  feature: string;
  models: string;
  input_tokens: string;
  output_tokens: string;
  images: number;
  resolution: string | null;
  video_seconds: number;
  amount: string;
  rate_card_version: string;
  refunded: string;
}

/**
 * `credits` is what the usage costs after corrections (its price minus what refunds gave back, README "Corrections");
 * the columns stay as they were (consumers of the CSV read them by position); the refunds themselves are in the history.
 *
 * Streams one CSV row per usage event in constant memory: keyset pages of (occurred_at, usage_id), each
 * page a short query of its own (no transaction or cursor held open for the whole download), written
 * through csv-stringify with backpressure from the client's socket.
 */
@Injectable()
export class UsageExportService {
  private readonly s: string;
  pageSize = 5_000;

  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    config: LedgerConfig,
  ) {
    this.s = quoteIdentifier(config.DATABASE_SCHEMA);
  }

  async writeCsv(accountId: string, range: TimeRange, out: Writable): Promise<number> {
    // A cell starting with =, +, -, @, tab or return is prefixed with ' so that a spreadsheet shows it as text and
    // does not run it as a formula (OWASP "CSV injection"): ids may start with - or @. Amounts and counts never do.
    const csv = stringify({ header: true, columns: [...USAGE_CSV_COLUMNS], escape_formulas: true });
    const piped = pipeline(csv, out);
    // Marks the rejection as handled while a page query runs; it is still awaited (and thrown) below.
    piped.catch(() => undefined);
    let rows = 0;
    try {
      // Microsecond text keeps the keyset exact (a JS Date would round to milliseconds and skip rows).
      let after: { occurredAt: string; usageId: string } | undefined;
      for (;;) {
        const page = await this.page(accountId, range, after);
        for (const row of page) {
          if (out.destroyed) return rows;
          const ok = csv.write([
            row.occurred_at, row.usage_id, row.feature, row.models, row.input_tokens, row.output_tokens, row.images,
            row.resolution ?? '', row.video_seconds, formatCredits(BigInt(row.amount) - BigInt(row.refunded)), row.rate_card_version,
          ]);
          rows += 1;
          if (!ok) await Promise.race([once(csv, 'drain'), piped]);
        }
        if (page.length < this.pageSize) break;
        const last = page[page.length - 1];
        after = { occurredAt: last.occurred_at, usageId: last.usage_id };
      }
      csv.end();
      await piped;
      return rows;
    } catch (error) {
      csv.destroy(error as Error);
      await piped.catch(() => undefined);
      throw error;
    }
  }

  private async page(accountId: string, range: TimeRange, after: { occurredAt: string; usageId: string } | undefined): Promise<ExportDbRow[]> {
    const { rows } = await this.pool.query<ExportDbRow>(usageExportPageSql(this.s, accountId, range, this.pageSize, after));
    return rows;
  }
}

/**
 * One keyset page of the export, in (occurred_at, usage_id) order: the index's, so a page reads its own rows only.
 * The order names the table's column: `occurred_at` alone would be the output's text of the same name, which no
 * index gives, so every page would read and sort the rest of the range.
 */
export function usageExportPageSql(
  schema: string,
  accountId: string,
  range: TimeRange,
  pageSize: number,
  after: { occurredAt: string; usageId: string } | undefined,
): { text: string; values: unknown[] } {
  const values: unknown[] = [accountId, range.from, range.to, pageSize];
  let keyset = '';
  if (after) {
    values.push(after.occurredAt, after.usageId);
    keyset = 'AND (u.occurred_at, u.usage_id) > ($5::timestamptz, $6)';
  }
  return {
    text: `SELECT to_char(u.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at, u.usage_id, u.feature, u.models,
              u.input_tokens::text AS input_tokens, u.output_tokens::text AS output_tokens, u.images, u.resolution, u.video_seconds,
              u.amount::text AS amount, u.rate_card_version, u.refunded::text AS refunded
         FROM ${schema}.usage_records u
        WHERE u.account_id = $1 AND u.occurred_at >= $2 AND u.occurred_at < $3 ${keyset}
        ORDER BY u.occurred_at, u.usage_id
        LIMIT $4`,
    values,
  };
}

import type { Envelope } from '@tally/contracts';
import type { PoolClient } from 'pg';
import { quoteIdentifier } from '@tally/shared';
import { asLedgerEnvelope, projectBatch, type CorrectionRow } from './ledger-event-rows.codec';

/**
 * The channel live balance streams LISTEN on. A payload names the accounts whose balance moved, separated by
 * spaces (a space is not in ID_PATTERN): up to ACCOUNTS_PER_NOTIFICATION of them, so a batch that moves 400 balances
 * queues 7 notifications, not 400 (each costs PostgreSQL's commit and every listener a message).
 */
export const BALANCE_CHANGED_CHANNEL = 'balance_changed';
/** 60 account ids of at most 128 characters and their separators stay under NOTIFY's 8,000-byte payload limit. */
export const ACCOUNTS_PER_NOTIFICATION = 60;

/** The accounts a BALANCE_CHANGED_CHANNEL payload names. */
export const changedAccounts = (payload: string): string[] => payload.split(' ').filter((accountId) => accountId !== '');

/**
 * A SELECT that notifies BALANCE_CHANGED_CHANNEL of the `account_id`s `rows` (a CTE or a subquery) yields, grouped
 * ACCOUNTS_PER_NOTIFICATION to a payload, and returns how many accounts it named (`accounts`, text).
 */
export function notifyBalancesChanged(rows: string): string {
  return `SELECT coalesce(sum(named), 0)::text AS accounts
            FROM (SELECT count(*) AS named, pg_notify('${BALANCE_CHANGED_CHANNEL}', string_agg(account_id, ' '))
                    FROM (SELECT account_id, (row_number() OVER () - 1) / ${ACCOUNTS_PER_NOTIFICATION} AS part FROM ${rows}) numbered
                   GROUP BY part) notified`;
}

/**
 * Applies ledger.events.v1 envelopes to the read models inside the caller's transaction (the batch
 * consumer's, which also stores the Kafka offset; or the rebuild's). One statement per batch, multi-row via
 * json_to_recordset. Idempotent by (account, stream version): transactions and usage rows are
 * insert-or-ignore, balances only move forward, so redeliveries and replays change nothing.
 */
export class LedgerProjection {
  private readonly s: string;

  /**
   * `notify: false` for tables nobody reads yet (a rebuild's shadow tables): live balance streams would otherwise
   * be woken for rows they cannot see. The rebuild notifies the accounts its swap moved forward instead.
   */
  constructor(
    schema: string,
    private readonly options: { notify?: boolean } = {},
  ) {
    this.s = quoteIdentifier(schema);
  }

  async apply(tx: PoolClient, envelopes: readonly Envelope<object>[]): Promise<void> {
    if (envelopes.length === 0) return;
    const { balances, transactions, usageRecords, corrections } = projectBatch(envelopes.map(asLedgerEnvelope));

    // One statement, one round trip: two insert-or-ignore CTEs (empty arrays insert nothing) and the balance
    // upsert. Only rows that actually moved forward notify, 60 accounts to a notification (delivered at COMMIT).
    // cycle_start is only known from a CycleStarted; a later batch of the same cycle keeps the stored one.
    // Each table's rows go as one JSON array, read back by json_to_recordset under the rows' own (camelCase) keys:
    // one native JSON.stringify per table, where 46 parameter arrays cost pg's per-element escaping in JavaScript
    // (about 7 µs of the projector's CPU per event). Amounts are decimal strings, read by bigint's input function.
    // A usage's per-model lines are a jsonb column of its record, not rows of their own: a table with two indexes
    // less per usage (about 10 µs of PostgreSQL's CPU per usage event, docs/benchmarks.md session 16).
    await tx.query(
      `WITH transactions AS (
         INSERT INTO ${this.s}.ledger_transactions (account_id, stream_version, event_id, type, amount, balance_after, occurred_at, details, actor)
         SELECT * FROM json_to_recordset($1::json) AS r("accountId" varchar, "streamVersion" int, "eventId" varchar, "type" varchar,
                                                      "amount" bigint, "balanceAfter" bigint, "occurredAt" timestamptz, "details" jsonb, "actor" varchar)
         ON CONFLICT (account_id, stream_version) DO NOTHING
       ), records AS (
         INSERT INTO ${this.s}.usage_records (account_id, usage_id, stream_version, occurred_at, feature, models, input_tokens, output_tokens,
                                              images, resolution, video_seconds, amount, rate_card_version, lines)
         SELECT * FROM json_to_recordset($2::json) AS r("accountId" varchar, "usageId" varchar, "streamVersion" int, "occurredAt" timestamptz,
                                                      "feature" varchar, "models" text, "inputTokens" bigint, "outputTokens" bigint, "images" int,
                                                      "resolution" varchar, "videoSeconds" int, "amount" bigint, "rateCardVersion" varchar, "lines" jsonb)
         ON CONFLICT (account_id, usage_id) DO NOTHING
       ), changed AS (
         INSERT INTO ${this.s}.balances AS b (account_id, stream_version, available, allowance, promotional, purchased, held, overdraft,
                                            allocation, used_this_cycle, cycle_id, cycle_start, cycle_end, plan_id, unlimited, updated_at)
         SELECT * FROM json_to_recordset($3::json) AS r("accountId" varchar, "streamVersion" int, "available" bigint, "allowance" bigint,
                                                      "promotional" bigint, "purchased" bigint, "held" bigint, "overdraft" bigint, "allocation" bigint,
                                                      "usedThisCycle" bigint, "cycleId" varchar, "cycleStart" timestamptz, "cycleEnd" timestamptz,
                                                      "planId" varchar, "unlimited" bool, "updatedAt" timestamptz)
         ON CONFLICT (account_id) DO UPDATE SET
           stream_version = EXCLUDED.stream_version,
           available = EXCLUDED.available,
           allowance = EXCLUDED.allowance,
           promotional = EXCLUDED.promotional,
           purchased = EXCLUDED.purchased,
           held = EXCLUDED.held,
           overdraft = EXCLUDED.overdraft,
           allocation = EXCLUDED.allocation,
           used_this_cycle = EXCLUDED.used_this_cycle,
           cycle_id = EXCLUDED.cycle_id,
           cycle_start = CASE
             WHEN EXCLUDED.cycle_start IS NOT NULL THEN EXCLUDED.cycle_start
             WHEN b.cycle_id IS NOT DISTINCT FROM EXCLUDED.cycle_id THEN b.cycle_start
           END,
           cycle_end = EXCLUDED.cycle_end,
           plan_id = EXCLUDED.plan_id,
           unlimited = EXCLUDED.unlimited,
           updated_at = EXCLUDED.updated_at
         WHERE b.stream_version < EXCLUDED.stream_version
         RETURNING account_id
       )
       ${this.options.notify === false ? 'SELECT count(*) FROM changed' : notifyBalancesChanged('changed')}`,
      [jsonParameter(transactions), jsonParameter(usageRecords), jsonParameter(balances)],
    );
    for (const correction of corrections) await this.applyCorrection(tx, correction);
  }

  /**
   * Links a correction to what it corrects, after the rows of its batch are in: the corrected history entry lists it
   * in `details.corrections`, its own entry gets the corrected entry's `streamVersion` in `details.corrects`, and a
   * refund takes its amount off the usage record and its models' lines. Idempotent: the usage record moves only for
   * a refund newer than the last it took (`last_refund_version`), and an entry is listed once.
   */
  private async applyCorrection(tx: PoolClient, c: CorrectionRow): Promise<void> {
    const listed = JSON.stringify([{ streamVersion: c.streamVersion }]);
    const entry = JSON.stringify([{ type: c.kind === 'refund' ? 'UsageRefunded' : 'GrantVoided', streamVersion: c.streamVersion, amount: c.credits }]);
    const linkBoth = (corrected: string) => `
       corrected_row AS (
         UPDATE ${this.s}.ledger_transactions t
            SET details = jsonb_set(t.details, '{corrections}', coalesce(t.details->'corrections', '[]'::jsonb) || $3::jsonb)
           FROM ${corrected} corrected
          WHERE t.account_id = $1 AND t.stream_version = corrected.stream_version
            AND NOT coalesce(t.details->'corrections', '[]'::jsonb) @> $4::jsonb
       )
       UPDATE ${this.s}.ledger_transactions t
          SET details = jsonb_set(t.details, '{corrects,streamVersion}', to_jsonb(corrected.stream_version))
         FROM ${corrected} corrected
        WHERE t.account_id = $1 AND t.stream_version = $2`;
    if (c.kind === 'refund') {
      // The lines' jsonb is rebuilt in its own order, each model's refunded raised by its part (parts of one model summed).
      await tx.query(
        `WITH debit AS (
           SELECT stream_version FROM ${this.s}.usage_records WHERE account_id = $1 AND usage_id = $5
         ), record AS (
           UPDATE ${this.s}.usage_records r
              SET refunded = r.refunded + $6::bigint, last_refund_version = $2,
                  lines = (SELECT coalesce(jsonb_agg(CASE WHEN part.amount IS NULL THEN line.value
                                                          ELSE jsonb_set(line.value, '{refunded}', to_jsonb(((line.value->>'refunded')::bigint + part.amount)::text)) END
                                                     ORDER BY line.ordinality), '[]'::jsonb)
                             FROM jsonb_array_elements(r.lines) WITH ORDINALITY AS line
                             LEFT JOIN (SELECT model, sum(amount) AS amount FROM unnest($7::varchar[], $8::bigint[]) AS x(model, amount) GROUP BY model) part
                                    ON part.model = line.value->>'model')
            WHERE r.account_id = $1 AND r.usage_id = $5 AND r.last_refund_version < $2
         ), ${linkBoth('debit')}`,
        [c.accountId, c.streamVersion, entry, listed, c.usageId, c.amount, c.perModel.map((m) => m.model), c.perModel.map((m) => m.amount)],
      );
    } else {
      await tx.query(
        `WITH granted AS (
           SELECT stream_version FROM ${this.s}.ledger_transactions
            WHERE account_id = $1 AND type = 'CreditsGranted' AND details->>'grantId' = $5
            ORDER BY stream_version LIMIT 1
         ), ${linkBoth('granted')}`,
        [c.accountId, c.streamVersion, entry, listed, c.grantId],
      );
    }
  }
}

/** The tables a rebuild empties, in an order that respects nothing but readability (there are no FKs). */
export const READ_MODEL_TABLES = ['balances', 'ledger_transactions', 'usage_records'] as const;

/**
 * A `json` parameter as its UTF-8 bytes (pg sends a Buffer in binary format, which for json is the text itself): the
 * text is garbage at once, and the bytes the query keeps until PostgreSQL answers live outside V8's heap, so no
 * scavenge copies them while the statement runs (as strings they were most of what the projector's scavenges copied).
 */
function jsonParameter(rows: readonly object[]): Buffer {
  return Buffer.from(JSON.stringify(rows));
}

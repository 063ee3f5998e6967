import type { Envelope } from '@tally/contracts';
import type { PoolClient } from 'pg';
import { jsonbParameter, quoteIdentifier } from '@tally/shared';
import { asLedgerEnvelope, projectBatch, type BalanceRow, type CorrectionRow, type TransactionRow, type UsageRecordRow } from './ledger-event-rows.codec';

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
 * jsonb_array_elements. Idempotent by (account, stream version): transactions and usage rows are
 * insert-or-ignore, balances only move forward, so redeliveries and replays change nothing.
 */
export class LedgerProjection {
  private readonly s: string;
  private readonly statement: { name: string; text: string };

  /**
   * `notify: false` for tables nobody reads yet (a rebuild's shadow tables): live balance streams would otherwise
   * be woken for rows they cannot see. The rebuild notifies the accounts its swap moved forward instead.
   */
  constructor(
    schema: string,
    options: { notify?: boolean } = {},
  ) {
    this.s = quoteIdentifier(schema);
    this.statement = projectionStatement(schema, options.notify !== false);
  }

  async apply(tx: PoolClient, envelopes: readonly Envelope<object>[]): Promise<void> {
    if (envelopes.length === 0) return;
    const { balances, transactions, usageRecords, corrections } = projectBatch(envelopes.map(asLedgerEnvelope));

    await tx.query({
      ...this.statement,
      values: [TRANSACTION_COLUMNS.parameter(transactions), USAGE_RECORD_COLUMNS.parameter(usageRecords), BALANCE_COLUMNS.parameter(balances)],
    });
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
        // The voided bucket came from a grant (or purchase), or from the refund that reissued it (`refund:<key>`).
        `WITH granted AS (
           SELECT stream_version FROM ${this.s}.ledger_transactions
            WHERE account_id = $1
              AND ((type = 'CreditsGranted' AND details->>'grantId' = $5) OR (type = 'UsageRefunded' AND details->>'refundId' = $5))
            ORDER BY stream_version LIMIT 1
         ), ${linkBoth('granted')}`,
        [c.accountId, c.streamVersion, entry, listed, c.grantId],
      );
    }
  }
}

/**
 * One statement, one round trip: two insert-or-ignore CTEs (empty arrays insert nothing) and the balance
 * upsert. Only rows that actually moved forward notify, 60 accounts to a notification (delivered at COMMIT).
 * cycle_start is only known from a CycleStarted; a later batch of the same cycle keeps the stored one.
 * Each table's rows go as one jsonb array of arrays, a row's values in its table's column order (RowColumns): one
 * native JSON.stringify per table, where 46 parameter arrays cost pg's per-element escaping in JavaScript (about
 * 7 µs of the projector's CPU per event), and no keys for PostgreSQL to lex: json_to_recordset over objects cost it
 * 8–14 µs more per usage event (docs/benchmarks.md session 24). Amounts are decimal strings, read by bigint's input.
 * A usage's per-model lines are a jsonb column of its record, not rows of their own: a table with two indexes
 * less per usage (about 10 µs of PostgreSQL's CPU per usage event, docs/benchmarks.md session 16).
 * Named (prepared once per connection, one name per schema and notify): parsing and planning this statement took
 * PostgreSQL ~600 µs per call, ~12 µs per usage at the projector's batches of ~50 (docs/benchmarks.md session 30).
 */
function projectionStatement(schema: string, notify: boolean): { name: string; text: string } {
  const s = quoteIdentifier(schema);
  return {
    name: `tally-projection:${schema}:${notify ? 'notify' : 'quiet'}`,
    text: `WITH transactions AS (
         INSERT INTO ${s}.ledger_transactions ${TRANSACTION_COLUMNS.insert}
         SELECT ${TRANSACTION_COLUMNS.select} FROM jsonb_array_elements($1::jsonb) AS e
         ON CONFLICT (account_id, stream_version) DO NOTHING
       ), records AS (
         INSERT INTO ${s}.usage_records ${USAGE_RECORD_COLUMNS.insert}
         SELECT ${USAGE_RECORD_COLUMNS.select} FROM jsonb_array_elements($2::jsonb) AS e
         ON CONFLICT (account_id, usage_id) DO NOTHING
       ), changed AS (
         INSERT INTO ${s}.balances AS b ${BALANCE_COLUMNS.insert}
         SELECT ${BALANCE_COLUMNS.select} FROM jsonb_array_elements($3::jsonb) AS e
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
       ${notify ? notifyBalancesChanged('changed') : 'SELECT count(*) FROM changed'}`,
  };
}

/** The tables a rebuild empties, in an order that respects nothing but readability (there are no FKs). */
export const READ_MODEL_TABLES = ['balances', 'ledger_transactions', 'usage_records'] as const;

/** The SQL type a column's value is read as from its row's JSON value (`->>` gives its text, `->` a jsonb). */
type ColumnType = 'varchar' | 'text' | 'int' | 'bigint' | 'bool' | 'timestamptz' | 'jsonb';

/**
 * A table's columns, each filled from one field of its row type: the INSERT's column list, the SELECT reading them
 * from a jsonb array element `e` by position, and the parameter with each row as an array in that same order. One
 * list makes all three, so they cannot drift apart; keyed by field, so a field added to a row type must be given a
 * column here or this does not compile.
 */
class RowColumns<Row> {
  readonly insert: string;
  readonly select: string;
  private readonly fields: (keyof Row)[];

  constructor(columns: { [Field in keyof Row]-?: readonly [column: string, type: ColumnType] }) {
    const entries = Object.entries(columns) as [keyof Row & string, readonly [string, ColumnType]][];
    this.fields = entries.map(([field]) => field);
    this.insert = `(${entries.map(([, [column]]) => column).join(', ')})`;
    this.select = entries.map(([, [, type]], i) => (type === 'jsonb' ? `e->${i}` : `(e->>${i})::${type}`)).join(', ');
  }

  parameter(rows: readonly Row[]): Buffer {
    return jsonbParameter(rows.map((row) => this.fields.map((field) => row[field] ?? null)));
  }
}

const TRANSACTION_COLUMNS = new RowColumns<TransactionRow>({
  accountId: ['account_id', 'varchar'],
  streamVersion: ['stream_version', 'int'],
  eventId: ['event_id', 'varchar'],
  type: ['type', 'varchar'],
  amount: ['amount', 'bigint'],
  balanceAfter: ['balance_after', 'bigint'],
  occurredAt: ['occurred_at', 'timestamptz'],
  details: ['details', 'jsonb'],
  actor: ['actor', 'varchar'],
});

const USAGE_RECORD_COLUMNS = new RowColumns<UsageRecordRow>({
  accountId: ['account_id', 'varchar'],
  usageId: ['usage_id', 'varchar'],
  streamVersion: ['stream_version', 'int'],
  occurredAt: ['occurred_at', 'timestamptz'],
  feature: ['feature', 'varchar'],
  models: ['models', 'text'],
  inputTokens: ['input_tokens', 'bigint'],
  outputTokens: ['output_tokens', 'bigint'],
  images: ['images', 'int'],
  resolution: ['resolution', 'varchar'],
  videoSeconds: ['video_seconds', 'int'],
  amount: ['amount', 'bigint'],
  rateCardVersion: ['rate_card_version', 'varchar'],
  lines: ['lines', 'jsonb'],
});

const BALANCE_COLUMNS = new RowColumns<BalanceRow>({
  accountId: ['account_id', 'varchar'],
  streamVersion: ['stream_version', 'int'],
  available: ['available', 'bigint'],
  allowance: ['allowance', 'bigint'],
  promotional: ['promotional', 'bigint'],
  purchased: ['purchased', 'bigint'],
  held: ['held', 'bigint'],
  overdraft: ['overdraft', 'bigint'],
  allocation: ['allocation', 'bigint'],
  usedThisCycle: ['used_this_cycle', 'bigint'],
  cycleId: ['cycle_id', 'varchar'],
  cycleStart: ['cycle_start', 'timestamptz'],
  cycleEnd: ['cycle_end', 'timestamptz'],
  planId: ['plan_id', 'varchar'],
  unlimited: ['unlimited', 'bool'],
  updatedAt: ['updated_at', 'timestamptz'],
});

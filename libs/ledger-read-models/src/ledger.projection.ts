import type { Envelope } from '@tally/contracts';
import type { PoolClient } from 'pg';
import { quoteIdentifier } from '@tally/shared';
import { asLedgerEnvelope, projectBatch } from './ledger-event-rows.codec';

/** The channel live balance streams LISTEN on; the payload is the account id. */
export const BALANCE_CHANGED_CHANNEL = 'balance_changed';

/**
 * Applies ledger.events.v1 envelopes to the read models inside the caller's transaction (the batch
 * consumer's, which also stores the Kafka offset; or the rebuild's). One statement per batch, multi-row via
 * unnest. Idempotent by (account, stream version): transactions and usage rows are
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
    const { balances, transactions, usageRecords, usageLines } = projectBatch(envelopes.map(asLedgerEnvelope));

    // One statement, one round trip: three insert-or-ignore CTEs (empty arrays insert nothing) and the balance
    // upsert. Only rows that actually moved forward notify (delivered at COMMIT; PostgreSQL folds duplicates).
    // cycle_start is only known from a CycleStarted; a later batch of the same cycle keeps the stored one.
    await tx.query(
      `WITH transactions AS (
         INSERT INTO ${this.s}.ledger_transactions (account_id, stream_version, event_id, type, amount, balance_after, occurred_at, details, actor)
         SELECT * FROM unnest($1::varchar[], $2::int[], $3::varchar[], $4::varchar[], $5::bigint[], $6::bigint[], $7::timestamptz[], $8::jsonb[], $46::varchar[])
         ON CONFLICT (account_id, stream_version) DO NOTHING
       ), records AS (
         INSERT INTO ${this.s}.usage_records (account_id, usage_id, stream_version, occurred_at, feature, models, input_tokens, output_tokens,
                                              images, resolution, video_seconds, amount, rate_card_version)
         SELECT * FROM unnest($9::varchar[], $10::varchar[], $11::int[], $12::timestamptz[], $13::varchar[], $14::text[], $15::bigint[], $16::bigint[],
                              $17::int[], $18::varchar[], $19::int[], $20::bigint[], $21::varchar[])
         ON CONFLICT (account_id, usage_id) DO NOTHING
       ), lines AS (
         INSERT INTO ${this.s}.usage_lines (account_id, usage_id, model, feature, amount, input_tokens, output_tokens, occurred_at)
         SELECT * FROM unnest($22::varchar[], $23::varchar[], $24::varchar[], $25::varchar[], $26::bigint[], $27::bigint[], $28::bigint[], $29::timestamptz[])
         ON CONFLICT (account_id, usage_id, model) DO NOTHING
       ), changed AS (
         INSERT INTO ${this.s}.balances AS b (account_id, stream_version, available, allowance, promotional, purchased, held, overdraft,
                                            allocation, used_this_cycle, cycle_id, cycle_start, cycle_end, plan_id, unlimited, updated_at)
         SELECT * FROM unnest($30::varchar[], $31::int[], $32::bigint[], $33::bigint[], $34::bigint[], $35::bigint[], $36::bigint[], $37::bigint[],
                              $38::bigint[], $39::bigint[], $40::varchar[], $41::timestamptz[], $42::timestamptz[], $43::varchar[], $44::bool[], $45::timestamptz[])
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
       ${this.options.notify === false ? 'SELECT count(*) FROM changed' : `SELECT pg_notify('${BALANCE_CHANGED_CHANNEL}', account_id) FROM changed`}`,
      [
        ...columns(transactions, ['accountId', 'streamVersion', 'eventId', 'type', 'amount', 'balanceAfter', 'occurredAt']),
        transactions.map((row) => JSON.stringify(row.details)),
        ...columns(usageRecords, ['accountId', 'usageId', 'streamVersion', 'occurredAt', 'feature', 'models', 'inputTokens', 'outputTokens', 'images', 'resolution', 'videoSeconds', 'amount', 'rateCardVersion']),
        ...columns(usageLines, ['accountId', 'usageId', 'model', 'feature', 'amount', 'inputTokens', 'outputTokens', 'occurredAt']),
        ...columns(balances, ['accountId', 'streamVersion', 'available', 'allowance', 'promotional', 'purchased', 'held', 'overdraft', 'allocation', 'usedThisCycle', 'cycleId', 'cycleStart', 'cycleEnd', 'planId', 'unlimited', 'updatedAt']),
        transactions.map((row) => row.actor),
      ],
    );
  }
}

/** One array per column, in the order given: the parameters of an `unnest(...)` multi-row insert. */
function columns<T, K extends keyof T>(rows: readonly T[], keys: readonly K[]): T[K][][] {
  return keys.map((key) => rows.map((row) => row[key]));
}

/** The tables a rebuild empties, in an order that respects nothing but readability (there are no FKs). */
export const READ_MODEL_TABLES = ['balances', 'ledger_transactions', 'usage_records', 'usage_lines'] as const;

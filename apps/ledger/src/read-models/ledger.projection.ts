import type { Envelope } from '@tally/contracts';
import type { PoolClient } from 'pg';
import { asLedgerEnvelope, projectBatch } from './ledger-event.rows';
import { quoteIdent } from './sql';

/** The channel live balance streams LISTEN on; the payload is the account id. */
export const BALANCE_CHANGED_CHANNEL = 'balance_changed';

/**
 * Applies ledger.events.v1 envelopes to the read models inside the caller's transaction (the batch
 * consumer's, which also stores the Kafka offset; or the rebuild's). At most four statements per batch,
 * each one multi-row via unnest. Idempotent by (account, stream version): transactions and usage rows are
 * insert-or-ignore, balances only move forward, so redeliveries and replays change nothing.
 */
export class LedgerProjection {
  private readonly s: string;

  constructor(schema: string) {
    this.s = quoteIdent(schema);
  }

  async apply(tx: PoolClient, envelopes: readonly Envelope<object>[]): Promise<void> {
    if (envelopes.length === 0) return;
    const { balances, transactions, usageRecords, usageLines } = projectBatch(envelopes.map(asLedgerEnvelope));

    if (transactions.length > 0) {
      await tx.query(
        `INSERT INTO ${this.s}.ledger_transactions (account_id, stream_version, event_id, type, amount, balance_after, occurred_at, details)
         SELECT * FROM unnest($1::varchar[], $2::int[], $3::varchar[], $4::varchar[], $5::bigint[], $6::bigint[], $7::timestamptz[], $8::jsonb[])
         ON CONFLICT (account_id, stream_version) DO NOTHING`,
        [
          transactions.map((row) => row.accountId),
          transactions.map((row) => row.streamVersion),
          transactions.map((row) => row.eventId),
          transactions.map((row) => row.type),
          transactions.map((row) => row.amount),
          transactions.map((row) => row.balanceAfter),
          transactions.map((row) => row.occurredAt),
          transactions.map((row) => JSON.stringify(row.details)),
        ],
      );
    }

    if (usageRecords.length > 0) {
      await tx.query(
        `INSERT INTO ${this.s}.usage_records (account_id, usage_id, stream_version, occurred_at, feature, models, input_tokens, output_tokens,
                                              images, resolution, video_seconds, amount, rate_card_version)
         SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::int[], $4::timestamptz[], $5::varchar[], $6::text[], $7::bigint[], $8::bigint[],
                              $9::int[], $10::varchar[], $11::int[], $12::bigint[], $13::varchar[])
         ON CONFLICT (account_id, usage_id) DO NOTHING`,
        [
          usageRecords.map((row) => row.accountId),
          usageRecords.map((row) => row.usageId),
          usageRecords.map((row) => row.streamVersion),
          usageRecords.map((row) => row.occurredAt),
          usageRecords.map((row) => row.feature),
          usageRecords.map((row) => row.models),
          usageRecords.map((row) => row.inputTokens),
          usageRecords.map((row) => row.outputTokens),
          usageRecords.map((row) => row.images),
          usageRecords.map((row) => row.resolution),
          usageRecords.map((row) => row.videoSeconds),
          usageRecords.map((row) => row.amount),
          usageRecords.map((row) => row.rateCardVersion),
        ],
      );
    }

    if (usageLines.length > 0) {
      await tx.query(
        `INSERT INTO ${this.s}.usage_lines (account_id, usage_id, model, feature, amount, input_tokens, output_tokens, occurred_at)
         SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::bigint[], $6::bigint[], $7::bigint[], $8::timestamptz[])
         ON CONFLICT (account_id, usage_id, model) DO NOTHING`,
        [
          usageLines.map((row) => row.accountId),
          usageLines.map((row) => row.usageId),
          usageLines.map((row) => row.model),
          usageLines.map((row) => row.feature),
          usageLines.map((row) => row.amount),
          usageLines.map((row) => row.inputTokens),
          usageLines.map((row) => row.outputTokens),
          usageLines.map((row) => row.occurredAt),
        ],
      );
    }

    // Only rows that actually moved forward notify (delivered at COMMIT; PostgreSQL folds duplicates).
    // cycle_start is only known from a CycleStarted; a later batch of the same cycle keeps the stored one.
    await tx.query(
      `WITH changed AS (
         INSERT INTO ${this.s}.balances AS b (account_id, stream_version, available, allowance, promotional, purchased, held, overdraft,
                                            allocation, used_this_cycle, cycle_id, cycle_start, cycle_end, plan_id, unlimited, updated_at)
         SELECT * FROM unnest($1::varchar[], $2::int[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
                              $9::bigint[], $10::bigint[], $11::varchar[], $12::timestamptz[], $13::timestamptz[], $14::varchar[], $15::bool[], $16::timestamptz[])
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
       SELECT pg_notify('${BALANCE_CHANGED_CHANNEL}', account_id) FROM changed`,
      [
        balances.map((row) => row.accountId),
        balances.map((row) => row.streamVersion),
        balances.map((row) => row.available),
        balances.map((row) => row.allowance),
        balances.map((row) => row.promotional),
        balances.map((row) => row.purchased),
        balances.map((row) => row.held),
        balances.map((row) => row.overdraft),
        balances.map((row) => row.allocation),
        balances.map((row) => row.usedThisCycle),
        balances.map((row) => row.cycleId),
        balances.map((row) => row.cycleStart),
        balances.map((row) => row.cycleEnd),
        balances.map((row) => row.planId),
        balances.map((row) => row.unlimited),
        balances.map((row) => row.updatedAt),
      ],
    );
  }
}

/** The tables a rebuild empties, in an order that respects nothing but readability (there are no FKs). */
export const READ_MODEL_TABLES = ['balances', 'ledger_transactions', 'usage_records', 'usage_lines'] as const;

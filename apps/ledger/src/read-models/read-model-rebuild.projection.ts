import type { Envelope } from '@tally/contracts';
import type { Pool } from 'pg';
import { quoteIdentifier } from '@tally/shared';
import { LedgerProjection, READ_MODEL_TABLES } from './ledger.projection';

export interface RebuildResult {
  batches: number;
  events: number;
}

/**
 * Empties the read models of `schema` and re-applies every event, in stream order, in ONE transaction:
 * readers keep seeing the old tables until COMMIT, and the projection consumer blocks on the table locks
 * meanwhile, then resumes idempotently (whatever it applies afterwards is newer or ignored).
 *
 * `readAllEnvelopes` yields the account streams as ledger.events.v1 envelopes (with streamVersion and
 * balanceAfter), e.g. the event store read through the relay's own envelope mapping.
 */
export async function rebuildReadModels(pool: Pool, schema: string, readAllEnvelopes: AsyncIterable<Envelope<object>[]>): Promise<RebuildResult> {
  const projection = new LedgerProjection(schema);
  const s = quoteIdentifier(schema);
  const tx = await pool.connect();
  const result: RebuildResult = { batches: 0, events: 0 };
  try {
    await tx.query('BEGIN');
    await tx.query(`LOCK TABLE ${READ_MODEL_TABLES.map((table) => `${s}.${table}`).join(', ')} IN ACCESS EXCLUSIVE MODE`);
    await tx.query(`TRUNCATE ${READ_MODEL_TABLES.map((table) => `${s}.${table}`).join(', ')}`);
    for await (const batch of readAllEnvelopes) {
      await projection.apply(tx, batch);
      result.batches += 1;
      result.events += batch.length;
    }
    await tx.query('COMMIT');
    tx.release();
    return result;
  } catch (error) {
    await tx.query('ROLLBACK').then(
      () => tx.release(),
      (rollbackError: Error) => tx.release(rollbackError),
    );
    throw error;
  }
}

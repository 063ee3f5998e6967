import { quoteIdentifier } from '@tally/shared';
import type { Pool } from 'pg';

export interface StoredOffset {
  schema: string;
  groupId: string;
  topic: string;
  partition: number;
  /** The offset of the last message applied (-1: none), stored with its effects by libs/kafka's BatchConsumer. */
  committedOffset: string;
  updatedAt: Date;
}

/** Every offset the services' consumers stored in PostgreSQL, from each schema's `kafka_consumer_offsets` (absent tables skipped). */
export async function storedOffsets(pool: Pool, schemas: readonly string[]): Promise<StoredOffset[]> {
  const out: StoredOffset[] = [];
  for (const schema of schemas) {
    const table = `${quoteIdentifier(schema)}.kafka_consumer_offsets`;
    const { rows: [exists] } = await pool.query<{ found: string | null }>(`SELECT to_regclass($1)::text AS found`, [table]);
    if (!exists.found) continue;
    const { rows } = await pool.query<{ group_id: string; topic: string; partition: number; committed_offset: string; updated_at: Date }>(
      `SELECT group_id, topic, partition, committed_offset::text, updated_at FROM ${table} ORDER BY group_id, topic, partition`,
    );
    out.push(...rows.map((row) => ({ schema, groupId: row.group_id, topic: row.topic, partition: row.partition, committedOffset: row.committed_offset, updatedAt: row.updated_at })));
  }
  return out;
}

/**
 * Sets the last applied offset of a partition (inserting the row if the consumer never stored one). Unlike the
 * consumer's own store, it may move backwards: that is what an operator asks for to re-read messages.
 */
export async function setStoredOffset(pool: Pool, ref: { schema: string; groupId: string; topic: string; partition: number }, lastApplied: string): Promise<void> {
  await pool.query(
    `INSERT INTO ${quoteIdentifier(ref.schema)}.kafka_consumer_offsets AS o (group_id, topic, partition, committed_offset) VALUES ($1, $2, $3, $4)
     ON CONFLICT (group_id, topic, partition) DO UPDATE SET committed_offset = EXCLUDED.committed_offset, updated_at = now()`,
    [ref.groupId, ref.topic, ref.partition, lastApplied],
  );
}

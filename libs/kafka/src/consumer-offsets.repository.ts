import type { Pool, PoolClient } from 'pg';
import { quoteIdentifier } from '@tally/shared';

/** Schema names come from configuration, never from users, but they are spliced into SQL: refuse anything odd. */
export function quoteSchema(schema: string): string {
  return quoteIdentifier(schema, 'PostgreSQL schema name for Kafka offsets');
}

/**
 * `committed_offset` is the offset of the LAST message applied (not Kafka's "next offset to read"), so a
 * message is a redelivery exactly when its offset is <= committed_offset.
 */
export function offsetsTableDdl(schema: string): string[] {
  const s = quoteSchema(schema);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${s}`,
    `CREATE TABLE IF NOT EXISTS ${s}.kafka_consumer_offsets (
       group_id text NOT NULL,
       topic text NOT NULL,
       partition integer NOT NULL,
       committed_offset bigint NOT NULL,
       updated_at timestamptz NOT NULL DEFAULT now(),
       PRIMARY KEY (group_id, topic, partition)
     )`,
    // Offsets are only meaningful on the cluster that assigned them (see lockStoredOffset).
    `ALTER TABLE ${s}.kafka_consumer_offsets ADD COLUMN IF NOT EXISTS cluster_id text`,
  ];
}

/** Idempotent; for tests and apps that do not run TypeORM migrations. */
export async function ensureOffsetsTable(pool: Pool, schema: string): Promise<void> {
  for (const statement of offsetsTableDdl(schema)) {
    try {
      await pool.query(statement);
    } catch (error) {
      // Two processes racing `IF NOT EXISTS` can still collide on the catalog's unique index; the loser is fine.
      if ((error as { code?: string }).code !== '23505') throw error;
    }
  }
}

export interface PartitionRef {
  groupId: string;
  topic: string;
  partition: number;
  /** The Kafka cluster id the offsets belong to; unknown (undefined) disables the check. */
  clusterId?: string;
}

/**
 * Locks the partition's offset row for the rest of the transaction and returns the last applied offset
 * (-1 when none). The lock fences a zombie: a consumer that lost the partition in a rebalance but is still
 * finishing a batch blocks here until the new owner commits, then sees the new offset and skips.
 */
export async function lockStoredOffset(tx: PoolClient, schema: string, ref: PartitionRef): Promise<bigint> {
  const table = `${quoteSchema(schema)}.kafka_consumer_offsets`;
  // One statement: insert-if-absent (a new partition starts at -1), and either way lock the row and read it.
  // Named (one per schema), as storeOffset: every consumer transaction runs both, so PostgreSQL parses and plans
  // them once per connection instead of every time.
  const { rows } = await tx.query<{ committed_offset: string; cluster_id: string | null }>({
    name: `tally-lock-offset:${schema}`,
    text: `INSERT INTO ${table} AS o (group_id, topic, partition, committed_offset) VALUES ($1, $2, $3, -1)
     ON CONFLICT (group_id, topic, partition) DO UPDATE SET committed_offset = o.committed_offset
     RETURNING o.committed_offset, o.cluster_id`,
    values: [ref.groupId, ref.topic, ref.partition],
  });
  const row = rows[0];
  if (ref.clusterId && row.cluster_id !== ref.clusterId) {
    // A different Kafka cluster (e.g. a broker whose storage was recreated next to this database) numbers its
    // offsets from 0 again: a stored offset from the old cluster would make every new message look like a
    // redelivery and be skipped. Start over on this cluster; the handlers' own idempotency keys (usage id,
    // stream version, event id) keep a re-read message from applying twice.
    const reset = row.cluster_id !== null;
    await tx.query(
      `UPDATE ${table} SET cluster_id = $4${reset ? ', committed_offset = -1' : ''}, updated_at = now()
        WHERE group_id = $1 AND topic = $2 AND partition = $3`,
      [ref.groupId, ref.topic, ref.partition, ref.clusterId],
    );
    if (reset) return -1n;
  }
  return BigInt(row.committed_offset);
}

/** Never moves backwards, even if called with an older offset. */
export async function storeOffset(tx: PoolClient, schema: string, ref: PartitionRef, offset: string): Promise<void> {
  await tx.query({
    name: `tally-store-offset:${schema}`,
    text: `UPDATE ${quoteSchema(schema)}.kafka_consumer_offsets
        SET committed_offset = GREATEST(committed_offset, $4::bigint), updated_at = now()
      WHERE group_id = $1 AND topic = $2 AND partition = $3`,
    values: [ref.groupId, ref.topic, ref.partition, offset],
  });
}

/** Last applied offset per partition for a group and topic (operators, tests). */
export async function readStoredOffsets(pool: Pool, schema: string, groupId: string, topic: string): Promise<Map<number, bigint>> {
  const { rows } = await pool.query<{ partition: number; committed_offset: string }>(
    `SELECT partition, committed_offset FROM ${quoteSchema(schema)}.kafka_consumer_offsets WHERE group_id = $1 AND topic = $2`,
    [groupId, topic],
  );
  return new Map(rows.map((row) => [row.partition, BigInt(row.committed_offset)]));
}

import { escapeLiteral, type Pool, type PoolClient } from 'pg';
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
    // Offsets are only meaningful on the cluster that assigned them (see beginAndLockStoredOffsets).
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
 * Opens a consumer transaction over one or more partitions (of one group): BEGIN, and lock each partition's offset
 * row for the rest of it, returning the last applied offset of each (-1 when none), in the order of `refs`. The lock
 * fences a zombie: a consumer that lost a partition in a rebalance but is still finishing a batch blocks here until
 * the new owner commits, then sees the new offset and skips.
 *
 * One round trip for both (a simple query of two statements, the values spelled as literals): every consumer
 * transaction opens this way, and under load each round trip waits behind the other transactions' work (session
 * 13 measured ~3 ms for a bare BEGIN at half the sustained rate), so two round trips are one too many. The rows are
 * locked in one order (topic, partition), so two transactions over overlapping partitions cannot deadlock on them.
 */
export async function beginAndLockStoredOffsets(tx: PoolClient, schema: string, refs: readonly PartitionRef[]): Promise<bigint[]> {
  const table = `${quoteSchema(schema)}.kafka_consumer_offsets`;
  const ordered = inLockOrder(refs);
  // One statement: insert-if-absent (a new partition starts at -1), and either way lock the row and read it.
  const [, { rows }] = await multiStatement<[unknown, { topic: string; partition: number; committed_offset: string; cluster_id: string | null }]>(
    tx,
    `BEGIN; INSERT INTO ${table} AS o (group_id, topic, partition, committed_offset)
     VALUES ${ordered.map((ref) => `(${partitionValues(ref)}, -1)`).join(', ')}
     ON CONFLICT (group_id, topic, partition) DO UPDATE SET committed_offset = o.committed_offset
     RETURNING o.topic, o.partition, o.committed_offset, o.cluster_id`,
  );
  const stored = new Map<string, bigint>();
  for (const row of rows) {
    const ref = refs.find((r) => r.topic === row.topic && r.partition === row.partition) as PartitionRef;
    stored.set(partitionKey(ref), await onThisCluster(tx, table, ref, row));
  }
  return refs.map((ref) => stored.get(partitionKey(ref)) as bigint);
}

/** One partition's offset from a locked row, after making sure it belongs to the Kafka cluster now consumed. */
async function onThisCluster(tx: PoolClient, table: string, ref: PartitionRef, row: { committed_offset: string; cluster_id: string | null }): Promise<bigint> {
  if (ref.clusterId && row.cluster_id !== ref.clusterId) {
    // A different Kafka cluster (e.g. a broker whose storage was recreated next to this database) numbers its
    // offsets from 0 again: a stored offset from the old cluster would make every new message look like a
    // redelivery and be skipped. Start over on this cluster; the handlers' own idempotency keys (usage id,
    // stream version, event id) keep a re-read message from applying twice. A row not stamped yet is adopted.
    const reset = !storedOnCluster(row.cluster_id, ref.clusterId);
    await tx.query(
      `UPDATE ${table} SET cluster_id = $4${reset ? ', committed_offset = -1' : ''}, updated_at = now()
        WHERE group_id = $1 AND topic = $2 AND partition = $3`,
      [ref.groupId, ref.topic, ref.partition, ref.clusterId],
    );
    if (reset) return -1n;
  }
  return BigInt(row.committed_offset);
}

/** Whether a stored offset counts on the cluster consumed: no cluster known (no check), a row not stamped yet, or this cluster's. */
function storedOnCluster(rowClusterId: string | null, clusterId: string | undefined): boolean {
  return !clusterId || rowClusterId === null || rowClusterId === clusterId;
}

/**
 * Stores each partition's last applied offset (never moving one backwards, even if given an older one) and COMMITs,
 * in one round trip (see beginAndLockStoredOffsets). Should the UPDATE fail, PostgreSQL skips the COMMIT of the same
 * query and the transaction stays open, aborted, for the caller's ROLLBACK.
 */
export async function storeOffsetsAndCommit(tx: PoolClient, schema: string, offsets: readonly { ref: PartitionRef; offset: string }[]): Promise<void> {
  for (const { offset } of offsets) if (!/^\d{1,19}$/.test(offset)) throw new Error(`not a Kafka offset: ${JSON.stringify(offset)}`);
  await multiStatement(
    tx,
    `UPDATE ${quoteSchema(schema)}.kafka_consumer_offsets AS o
        SET committed_offset = GREATEST(o.committed_offset, v.committed_offset), updated_at = now()
       FROM (VALUES ${offsets.map(({ ref, offset }) => `(${partitionValues(ref)}, ${offset}::bigint)`).join(', ')}) AS v(group_id, topic, partition, committed_offset)
      WHERE (o.group_id, o.topic, o.partition) = (v.group_id, v.topic, v.partition); COMMIT`,
  );
}

const partitionKey = (ref: PartitionRef): string => `${ref.topic}\u0000${ref.partition}`;

/** The partitions by topic then partition (the order their rows are locked in), each once. */
function inLockOrder(refs: readonly PartitionRef[]): PartitionRef[] {
  if (refs.length === 0) throw new Error('no partition to lock');
  if (new Set(refs.map(partitionKey)).size !== refs.length) throw new Error('a partition appears twice in one transaction');
  if (new Set(refs.map((ref) => ref.groupId)).size !== 1) throw new Error('partitions of several groups in one transaction');
  return [...refs].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
}

/** The partition's key as SQL literals: the group and topic escaped (they come from configuration and Kafka), the partition a checked integer. */
function partitionValues(ref: PartitionRef): string {
  if (!Number.isSafeInteger(ref.partition) || ref.partition < 0) throw new Error(`not a Kafka partition: ${ref.partition}`);
  return `${escapeLiteral(ref.groupId)}, ${escapeLiteral(ref.topic)}, ${ref.partition}`;
}

/** A simple query of several statements (no parameters): node-postgres answers one result per statement. */
async function multiStatement<R extends unknown[]>(tx: PoolClient, text: string): Promise<{ [K in keyof R]: { rows: R[K][] } }> {
  return (await tx.query(text)) as unknown as { [K in keyof R]: { rows: R[K][] } };
}

/**
 * Where PostgreSQL says each of a group's partitions resumes (`topic:partition` → the offset after the last one
 * applied); partitions with nothing stored on this Kafka cluster are absent (see onThisCluster). Read without a lock:
 * a zombie that commits later only moves an offset forward, and what it applied is then skipped as a redelivery.
 */
export async function readResumeOffsets(pool: Pool, schema: string, groupId: string, clusterId: string | undefined): Promise<Map<string, bigint>> {
  const { rows } = await pool.query<{ topic: string; partition: number; committed_offset: string; cluster_id: string | null }>(
    `SELECT topic, partition, committed_offset, cluster_id FROM ${quoteSchema(schema)}.kafka_consumer_offsets WHERE group_id = $1 AND committed_offset >= 0`,
    [groupId],
  );
  const onThisCluster = rows.filter((row) => storedOnCluster(row.cluster_id, clusterId));
  return new Map(onThisCluster.map((row) => [`${row.topic}:${row.partition}`, BigInt(row.committed_offset) + 1n]));
}

/** Last applied offset per partition for a group and topic (operators, tests). */
export async function readStoredOffsets(pool: Pool, schema: string, groupId: string, topic: string): Promise<Map<number, bigint>> {
  const { rows } = await pool.query<{ partition: number; committed_offset: string }>(
    `SELECT partition, committed_offset FROM ${quoteSchema(schema)}.kafka_consumer_offsets WHERE group_id = $1 AND topic = $2`,
    [groupId, topic],
  );
  return new Map(rows.map((row) => [row.partition, BigInt(row.committed_offset)]));
}

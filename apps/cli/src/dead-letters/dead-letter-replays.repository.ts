import { quoteIdentifier } from '@tally/shared';
import type { Pool } from 'pg';

export interface ReplayRecord {
  dlqTopic: string;
  partition: number;
  offset: string;
  targetTopic: string;
  targetPartition: number | null;
  targetOffset: string | null;
  reason: string | null;
  replays: number;
  replayedAt: Date;
}

/**
 * Which dead letters were replayed, so the same one is not replayed twice by accident: one row per dead-letter
 * message (topic, partition, offset), written once the source topic acknowledged the replayed copy. A replay
 * repeated anyway (with --again, or after a crash between the send and this row) is harmless: the message keeps its
 * id, so a consumer that already applied it skips it (usage id, event id, stream version).
 */
export class DeadLetterReplays {
  private readonly table: string;

  constructor(
    private readonly pool: Pool,
    private readonly schema: string,
  ) {
    this.table = `${quoteIdentifier(schema)}.dead_letter_replays`;
  }

  async ensureTable(): Promise<void> {
    await this.pool.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(this.schema)}`);
    await this.pool.query(`
      CREATE TABLE IF NOT EXISTS ${this.table} (
        dlq_topic text NOT NULL,
        partition integer NOT NULL,
        "offset" bigint NOT NULL,
        target_topic text NOT NULL,
        target_partition integer,
        target_offset bigint,
        reason text,
        replays integer NOT NULL DEFAULT 1,
        replayed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (dlq_topic, partition, "offset")
      )`);
  }

  async forTopic(dlqTopic: string): Promise<Map<string, ReplayRecord>> {
    const { rows } = await this.pool.query<{
      dlq_topic: string; partition: number; offset: string; target_topic: string; target_partition: number | null; target_offset: string | null; reason: string | null; replays: number; replayed_at: Date;
    }>(`SELECT * FROM ${this.table} WHERE dlq_topic = $1`, [dlqTopic]);
    return new Map(
      rows.map((row) => [
        `${row.partition}:${row.offset}`,
        { dlqTopic: row.dlq_topic, partition: row.partition, offset: row.offset, targetTopic: row.target_topic, targetPartition: row.target_partition, targetOffset: row.target_offset, reason: row.reason, replays: row.replays, replayedAt: row.replayed_at },
      ]),
    );
  }

  async record(replay: Omit<ReplayRecord, 'replays' | 'replayedAt'>): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.table} AS r (dlq_topic, partition, "offset", target_topic, target_partition, target_offset, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (dlq_topic, partition, "offset") DO UPDATE SET replays = r.replays + 1, replayed_at = now(),
         target_topic = EXCLUDED.target_topic, target_partition = EXCLUDED.target_partition, target_offset = EXCLUDED.target_offset`,
      [replay.dlqTopic, replay.partition, replay.offset, replay.targetTopic, replay.targetPartition, replay.targetOffset, replay.reason],
    );
  }
}

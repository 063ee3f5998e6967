import { quoteIdentifier } from '@tally/shared';
import type { Pool } from 'pg';

export interface ReplayRecord {
  dlqTopic: string;
  partition: number;
  offset: string;
  /** The dead letter's Kafka timestamp: a topic recreated since numbers new messages from 0 again (null: recorded before it was kept). */
  dlqTimestamp: string | null;
  targetTopic: string;
  targetPartition: number | null;
  targetOffset: string | null;
  reason: string | null;
  replays: number;
  replayedAt: Date;
}

/**
 * Which dead letters were replayed, so the same one is not replayed twice by accident: one row per dead-letter
 * message (topic, partition, offset, and its timestamp, which tells a message of a recreated topic at an offset used
 * before from the one replayed), written once the source topic acknowledged the replayed copy. A replay
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
    await this.pool.query(`ALTER TABLE ${this.table} ADD COLUMN IF NOT EXISTS dlq_timestamp text`);
  }

  /** The replays recorded for a dead-letter topic: `of(message)` is the one of that very message, if any. */
  async forTopic(dlqTopic: string): Promise<{ of: (message: { partition: number; offset: string; timestamp: string }) => ReplayRecord | undefined }> {
    const { rows } = await this.pool.query<{
      dlq_topic: string; partition: number; offset: string; dlq_timestamp: string | null; target_topic: string; target_partition: number | null; target_offset: string | null; reason: string | null; replays: number; replayed_at: Date;
    }>(`SELECT * FROM ${this.table} WHERE dlq_topic = $1`, [dlqTopic]);
    const byPlace = new Map<string, ReplayRecord>(
      rows.map((row) => [
        `${row.partition}:${row.offset}`,
        {
          dlqTopic: row.dlq_topic, partition: row.partition, offset: row.offset, dlqTimestamp: row.dlq_timestamp, targetTopic: row.target_topic, targetPartition: row.target_partition,
          targetOffset: row.target_offset, reason: row.reason, replays: row.replays, replayedAt: row.replayed_at,
        },
      ]),
    );
    return {
      of: ({ partition, offset, timestamp }) => {
        const record = byPlace.get(`${partition}:${offset}`);
        return record && (record.dlqTimestamp === null || record.dlqTimestamp === timestamp) ? record : undefined;
      },
    };
  }

  async record(replay: Omit<ReplayRecord, 'replays' | 'replayedAt'>): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.table} AS r (dlq_topic, partition, "offset", dlq_timestamp, target_topic, target_partition, target_offset, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (dlq_topic, partition, "offset") DO UPDATE SET
         -- Another message at the same place (the topic was recreated) starts its own count.
         replays = CASE WHEN r.dlq_timestamp IS NULL OR r.dlq_timestamp = EXCLUDED.dlq_timestamp THEN r.replays + 1 ELSE 1 END,
         replayed_at = now(), dlq_timestamp = EXCLUDED.dlq_timestamp, reason = EXCLUDED.reason,
         target_topic = EXCLUDED.target_topic, target_partition = EXCLUDED.target_partition, target_offset = EXCLUDED.target_offset`,
      [replay.dlqTopic, replay.partition, replay.offset, replay.dlqTimestamp, replay.targetTopic, replay.targetPartition, replay.targetOffset, replay.reason],
    );
  }
}

import type { MigrationInterface, QueryRunner } from 'typeorm';
import { schemaOf } from './schema-name.migration';

/**
 * A usage's per-model lines move into its record: `usage_records.lines`, a jsonb array of
 * `{model, amount, inputTokens, outputTokens, refunded}` (decimal strings, micro-credits), sorted by model, replaces
 * the `usage_lines` table. Every usage event wrote one more heap row and two more index entries there, about 10 µs of
 * PostgreSQL's CPU per usage (docs/benchmarks.md, session 16); the per-model totals now expand the lines of the
 * records in range. `down` restores the table from the column.
 */
export class UsageLinesInRecords1765500000000 implements MigrationInterface {
  readonly name = 'UsageLinesInRecords1765500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    await queryRunner.query(`ALTER TABLE ${s}.usage_records ADD COLUMN IF NOT EXISTS lines jsonb NOT NULL DEFAULT '[]'`);
    await queryRunner.query(`
      UPDATE ${s}.usage_records r
         SET lines = (SELECT jsonb_agg(jsonb_build_object('model', l.model, 'amount', l.amount::text, 'inputTokens', l.input_tokens::text,
                                                          'outputTokens', l.output_tokens::text, 'refunded', l.refunded::text)
                                       ORDER BY l.model COLLATE "C")
                        FROM ${s}.usage_lines l
                       WHERE l.account_id = r.account_id AND l.usage_id = r.usage_id)
       WHERE EXISTS (SELECT 1 FROM ${s}.usage_lines l WHERE l.account_id = r.account_id AND l.usage_id = r.usage_id)`);
    await queryRunner.query(`DROP TABLE ${s}.usage_lines`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const s = schemaOf(queryRunner);
    await queryRunner.query(`
      CREATE TABLE ${s}.usage_lines (
        account_id varchar(128) NOT NULL,
        usage_id varchar(128) NOT NULL,
        model varchar(128) NOT NULL,
        feature varchar(32) NOT NULL,
        amount bigint NOT NULL,
        input_tokens bigint NOT NULL,
        output_tokens bigint NOT NULL,
        occurred_at timestamptz NOT NULL,
        refunded bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (account_id, usage_id, model)
      )`);
    await queryRunner.query(`CREATE INDEX usage_lines_account_occurred_idx ON ${s}.usage_lines (account_id, occurred_at)`);
    await queryRunner.query(`
      INSERT INTO ${s}.usage_lines (account_id, usage_id, model, feature, amount, input_tokens, output_tokens, occurred_at, refunded)
      SELECT r.account_id, r.usage_id, l.model, r.feature, l.amount, l."inputTokens", l."outputTokens", r.occurred_at, l.refunded
        FROM ${s}.usage_records r
       CROSS JOIN LATERAL jsonb_to_recordset(r.lines) AS l(model varchar, amount bigint, "inputTokens" bigint, "outputTokens" bigint, refunded bigint)`);
    await queryRunner.query(`ALTER TABLE ${s}.usage_records DROP COLUMN lines`);
  }
}

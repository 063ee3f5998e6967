import { createTestSchema, testDatabaseUrl } from '@tally/testing';
import type { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { READ_MODEL_MIGRATIONS, UsageLinesInRecords1765500000000 } from '@tally/ledger-read-models';
import { BalanceReadRepository } from '../../src/read-models/balance/balance.repository';
import { UsageQueryService } from '../../src/read-models/history/usage.query';
import { AccountStream } from './account-stream.fixtures';
import { applyBatch, migrateReadModels, testConfig, testPool } from './read-model.fixtures';

const dataSource = (schema: string, migrations: readonly unknown[]): DataSource =>
  new DataSource({
    type: 'postgres',
    url: testDatabaseUrl(),
    schema,
    migrations: migrations as DataSource['options']['migrations'],
    migrationsTableName: 'ledger_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
  });

/** A usage's per-model lines are a jsonb column of its record (migration UsageLinesInRecords1765500000000). */
describe('usage lines in the usage record (PostgreSQL)', () => {
  let pool: Pool;
  beforeAll(() => {
    pool = testPool();
  });
  afterAll(async () => {
    await pool.end();
  });

  // The projection sorts a usage's lines in code, and the migration that moved usage_lines into records sorted them
  // with ORDER BY model COLLATE "C": a record folded again must be byte-identical, so the two orders must agree.
  it('stores a usage\'s lines in the order PostgreSQL\'s COLLATE "C" sorts their models (code points, not UTF-16 units)', async () => {
    const { schema, drop } = await createTestSchema('ledger_lines_order');
    try {
      await migrateReadModels(schema);
      const models = ['\u{1F916}-bot', '\uFFFD-model', 'gpt-4o', 'Zeta', 'alpha'];
      const dave = new AccountStream('dave', '2025-03-01T00:00:00.000Z', false);
      await applyBatch(pool, schema, [
        dave.opened(),
        dave.granted('purchased', '10', 'dave-pack'),
        dave.usage({ usageId: 'dave-unicode', occurredAt: '2025-03-02T10:00:00.000Z', lines: models.map((model) => ({ model, amount: '1' })) }),
      ]);
      const stored = await pool.query<{ model: string }>(
        `SELECT line->>'model' AS model FROM "${schema}".usage_records, jsonb_array_elements(lines) WITH ORDINALITY AS l(line, n) WHERE usage_id = 'dave-unicode' ORDER BY n`,
      );
      const collated = await pool.query<{ model: string }>('SELECT model FROM unnest($1::text[]) AS model ORDER BY model COLLATE "C"', [models]);
      expect(stored.rows.map((row) => row.model)).toEqual(collated.rows.map((row) => row.model));
      expect(stored.rows.map((row) => row.model)).toEqual(['Zeta', 'alpha', 'gpt-4o', '\uFFFD-model', '\u{1F916}-bot']);
    } finally {
      await drop();
    }
  });

  it('takes a council refund off each model it names, once, and nets it in the per-model totals', async () => {
    const { schema, drop } = await createTestSchema('ledger_lines');
    try {
      await migrateReadModels(schema);
      const carol = new AccountStream('carol');
      const opened = [carol.opened(), carol.granted('purchased', '100', 'carol-pack')];
      const council = carol.usage({
        usageId: 'carol-council',
        feature: 'council',
        occurredAt: '2025-03-03T10:00:00Z',
        lines: [
          { model: 'gpt-4o', amount: '0.5', inputTokens: 100, outputTokens: 100 },
          { model: 'claude-sonnet', amount: '0.75', inputTokens: 100, outputTokens: 120 },
        ],
      });
      // Two parts of one model in a refund add up.
      const refund = carol.usageRefunded('refund:c1', 'carol-council', '0.7', [
        { model: 'claude-sonnet', amount: '0.5' },
        { model: 'claude-sonnet', amount: '0.1' },
        { model: 'gpt-4o', amount: '0.1' },
      ]);
      await applyBatch(pool, schema, [...opened, council]);
      await applyBatch(pool, schema, [refund]);
      await applyBatch(pool, schema, [council, refund]); // redelivered

      const { rows } = await pool.query(`SELECT refunded::text, lines FROM "${schema}".usage_records WHERE account_id = 'carol'`);
      expect(rows).toEqual([
        {
          refunded: '700000',
          lines: [
            { model: 'claude-sonnet', amount: '750000', inputTokens: '100', outputTokens: '120', refunded: '600000' },
            { model: 'gpt-4o', amount: '500000', inputTokens: '100', outputTokens: '100', refunded: '100000' },
          ],
        },
      ]);
      const config = testConfig(schema);
      const summary = await new UsageQueryService(pool, config, new BalanceReadRepository(pool, config)).summary('carol', {
        from: '2025-03-01T00:00:00Z',
        to: '2025-04-01T00:00:00Z',
      });
      expect(summary.byModel).toEqual([
        { model: 'gpt-4o', credits: '0.4', requests: 1 },
        { model: 'claude-sonnet', credits: '0.15', requests: 1 },
      ]);
      expect(summary.totals).toEqual({ credits: '0.55', requests: 1 });
    } finally {
      await drop();
    }
  });

  it('moves existing usage_lines rows into the records on migration, and back on revert', async () => {
    const { schema, drop } = await createTestSchema('ledger_lines_mig');
    // The migrations up to the one moving the lines, then up to and including it (later ones stay out of the test).
    const at = READ_MODEL_MIGRATIONS.indexOf(UsageLinesInRecords1765500000000);
    const before = READ_MODEL_MIGRATIONS.slice(0, at);
    try {
      const old = dataSource(schema, before);
      await old.initialize();
      await old.runMigrations();
      await old.destroy();
      const s = `"${schema}"`;
      await pool.query(`INSERT INTO ${s}.usage_records (account_id, usage_id, stream_version, occurred_at, feature, models, input_tokens, output_tokens,
                                                        images, resolution, video_seconds, amount, rate_card_version, refunded, last_refund_version)
                        VALUES ('a', 'council', 3, '2025-03-03T10:00:00Z', 'council', 'gpt-4o+claude-sonnet', 200, 220, 0, NULL, 0, 1250000, 'rc', 600000, 4),
                               ('a', 'image', 5, '2025-03-04T10:00:00Z', 'image', 'flux', 0, 0, 2, '1024x1024', 0, 4000000, 'rc', 0, 0)`);
      await pool.query(`INSERT INTO ${s}.usage_lines (account_id, usage_id, model, feature, amount, input_tokens, output_tokens, occurred_at, refunded)
                        VALUES ('a', 'council', 'gpt-4o', 'council', 500000, 100, 100, '2025-03-03T10:00:00Z', 0),
                               ('a', 'council', 'claude-sonnet', 'council', 750000, 100, 120, '2025-03-03T10:00:00Z', 600000),
                               ('a', 'image', 'flux', 'image', 4000000, 0, 0, '2025-03-04T10:00:00Z', 0)`);
      const linesBefore = (await pool.query(`SELECT * FROM ${s}.usage_lines ORDER BY usage_id, model`)).rows;

      const current = dataSource(schema, READ_MODEL_MIGRATIONS.slice(0, at + 1));
      await current.initialize();
      try {
        await current.runMigrations();
        const { rows } = await pool.query(`SELECT usage_id, lines FROM ${s}.usage_records ORDER BY usage_id`);
        // The same documents the projection writes (sorted by model, decimal strings).
        expect(rows).toEqual([
          {
            usage_id: 'council',
            lines: [
              { model: 'claude-sonnet', amount: '750000', inputTokens: '100', outputTokens: '120', refunded: '600000' },
              { model: 'gpt-4o', amount: '500000', inputTokens: '100', outputTokens: '100', refunded: '0' },
            ],
          },
          { usage_id: 'image', lines: [{ model: 'flux', amount: '4000000', inputTokens: '0', outputTokens: '0', refunded: '0' }] },
        ]);
        const table = await pool.query(`SELECT to_regclass('${s}.usage_lines') AS t`);
        expect(table.rows[0].t).toBeNull();

        await current.undoLastMigration();
        expect((await pool.query(`SELECT * FROM ${s}.usage_lines ORDER BY usage_id, model`)).rows).toEqual(linesBefore);
        const columns = await pool.query(`SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'usage_records' AND column_name = 'lines'`, [schema]);
        expect(columns.rows).toEqual([]);
      } finally {
        await current.destroy();
      }
    } finally {
      await drop();
    }
  });
});

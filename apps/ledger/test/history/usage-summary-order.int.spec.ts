import { randomBytes } from 'node:crypto';
import { endPool, testDatabaseUrl } from '@tally/testing';
import type { Pool } from 'pg';
import { BalanceReadRepository } from '../../src/read-models/balance/balance.repository';
import { UsageQueryService } from '../../src/read-models/history/usage.query';
import { AccountStream } from './account-stream.fixtures';
import { applyBatch, migrateReadModels, testConfig, testPool } from './read-model.fixtures';

/**
 * The usage summary lists models and features by credits, most first, and ties by name in code-point order
 * (README "Corrections"), whatever the database's default collation: an operator's database created with an English
 * locale sorts `a` before `B`, code points `B` first.
 */
describe('usage summary order under a database with a linguistic collation (PostgreSQL)', () => {
  const database = `tally_icu_${randomBytes(4).toString('hex')}`;
  const url = Object.assign(new URL(testDatabaseUrl()), { pathname: `/${database}` }).toString();
  let admin: Pool;
  let pool: Pool;

  beforeAll(async () => {
    admin = testPool();
    await admin.query(`CREATE DATABASE ${database} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C.UTF-8'`);
    pool = testPool(url);
  });

  afterAll(async () => {
    if (pool) await endPool(pool); // every session closed before the drop ends what is left
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  it('breaks ties between models and between features by code point', async () => {
    const schema = 'ledger';
    await pool.query(`CREATE SCHEMA ${schema}`);
    await migrateReadModels(schema, false, url);
    const dana = new AccountStream('dana');
    const usage = (usageId: string, feature: string, model: string) =>
      dana.usage({ usageId, feature, occurredAt: '2025-03-03T10:00:00Z', lines: [{ model, amount: '1', inputTokens: 10, outputTokens: 10 }] });
    await applyBatch(pool, schema, [
      dana.opened(),
      dana.granted('purchased', '100', 'dana-pack'),
      usage('u1', 'chat', 'b-model'),
      usage('u2', 'Chat', 'B-model'),
      usage('u3', 'image', 'a-model'),
    ]);

    const config = testConfig(schema, { DATABASE_URL: url });
    const summary = await new UsageQueryService(pool, config, new BalanceReadRepository(pool, config)).summary('dana', {
      from: '2025-03-01T00:00:00Z',
      to: '2025-04-01T00:00:00Z',
    });

    expect(summary.byModel.map((line) => line.model)).toEqual(['B-model', 'a-model', 'b-model']);
    expect(summary.byFeature.map((line) => line.feature)).toEqual(['Chat', 'chat', 'image']);
  });
});

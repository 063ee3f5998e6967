import type { Pool, PoolClient } from 'pg';
import { formatCredits, parseCredits } from '@tally/money';
import { endPool } from '@tally/testing';
import { BalanceReadRepository } from '../../src/read-models/balance/balance.repository';
import { UsageQueryService } from '../../src/read-models/history/usage.query';
import { AccountStream } from './account-stream.fixtures';
import { applyBatch, migrateReadModels, testConfig, testPool } from './read-model.fixtures';

/**
 * The usage summary's parts (totals, features, days, models) are read by more than one statement: a projection batch
 * committing between them made one answer disagree with itself (the models adding up to more than the total). They
 * are read in one snapshot. Real PostgreSQL: a usage is projected between the two statements, every time.
 */
describe('usage summary read in one snapshot (PostgreSQL)', () => {
  const schema = `usage_snapshot_${Date.now().toString(36)}`;
  let pool: Pool;

  beforeAll(async () => {
    pool = testPool();
    await pool.query(`CREATE SCHEMA ${schema}`);
    await migrateReadModels(schema);
  });

  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await endPool(pool);
  });

  it('given a usage projected after its first statement, when the summary is read, then its models add up to its totals', async () => {
    const erin = new AccountStream('erin');
    const usage = (usageId: string) =>
      erin.usage({ usageId, feature: 'chat', occurredAt: '2025-03-03T10:00:00Z', lines: [{ model: 'gpt-4o', amount: '1', inputTokens: 10, outputTokens: 10 }] });
    await applyBatch(pool, schema, [erin.opened(), erin.granted('purchased', '100', 'erin-pack'), usage('u1')]);

    // Whichever statement reads first, the next usage is projected (committed) before any later one runs.
    let projected = false;
    const projectOnce = async () => {
      if (projected) return;
      projected = true;
      await applyBatch(pool, schema, [usage('u2')]);
    };
    const afterFirst = <T extends Pool | PoolClient>(target: T): T =>
      new Proxy(target, {
        get(object, property) {
          if (property === 'query') {
            return async (...args: unknown[]) => {
              const text = typeof args[0] === 'string' ? args[0] : '';
              const reads = text.includes('usage_records');
              const result = await (object.query as (...a: unknown[]) => Promise<unknown>)(...args);
              if (reads) await projectOnce();
              return result;
            };
          }
          if (property === 'connect') return async () => afterFirst(await (object as Pool).connect());
          const value: unknown = Reflect.get(object, property);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(object) : value;
        },
      });
    const racing = afterFirst(pool);
    const config = testConfig(schema);
    const summary = await new UsageQueryService(racing, config, new BalanceReadRepository(pool, config)).summary('erin', {
      from: '2025-03-01T00:00:00Z',
      to: '2025-04-01T00:00:00Z',
    });

    expect(projected).toBe(true);
    const modelCredits = summary.byModel.reduce((sum, line) => sum + parseCredits(line.credits), 0n);
    const modelRequests = summary.byModel.reduce((sum, line) => sum + line.requests, 0);
    expect({ credits: formatCredits(modelCredits), requests: modelRequests }).toEqual(summary.totals);
    expect(summary.byFeature.map(({ credits, requests }) => ({ credits, requests }))).toEqual([summary.totals]);
  });
});

import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';
import { migrateTakingTurns } from '../src/database/migrations-in-turn.migration';
import { serviceSession } from '../src/database/service-pool.provider';
import { testDatabaseUrl, uniqueSuffix, waitFor } from '../src/testing/index';

class CreateItems1700000000000 implements MigrationInterface {
  readonly name = 'CreateItems1700000000000';
  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`CREATE TABLE "${runner.connection.driver.schema}".items (id int PRIMARY KEY, at timestamptz NOT NULL)`);
  }
  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE "${runner.connection.driver.schema}".items`);
  }
}

/** As the services' index migrations are built: CONCURRENTLY, outside a transaction. */
class ItemsByTime1700000000001 implements MigrationInterface {
  readonly name = 'ItemsByTime1700000000001';
  readonly transaction = false;
  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS items_at_idx ON "${runner.connection.driver.schema}".items (at)`);
  }
  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX "${runner.connection.driver.schema}".items_at_idx`);
  }
}

/**
 * Replicas of a service booting together (a fresh install with two replicas, the README's upgrade: the old ones scaled
 * to 0, then the new ones started) migrate one at a time. A replica waiting its turn must not hold a snapshot: a
 * CREATE INDEX CONCURRENTLY waits for every older snapshot to end, and PostgreSQL sees no deadlock in an index build
 * waiting for the replica that waits for the builder's advisory lock.
 */
describe('migrateTakingTurns (PostgreSQL)', () => {
  let admin: Client;
  const service = `turns-${uniqueSuffix()}`;
  const schema = `migrations_in_turn_${uniqueSuffix()}`;

  beforeAll(async () => {
    admin = new Client({ connectionString: testDatabaseUrl() });
    await admin.connect();
  });

  afterAll(async () => {
    // Whatever a failed run left waiting (a hung build, a replica blocked on the lock) ends here.
    await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name like $1`, [`tally-${service}%`]);
    await admin.query(`drop schema if exists "${schema}" cascade`);
    await admin.end();
  });

  it('lets two replicas booting at once both finish, one after the other, when a migration builds an index concurrently', async () => {
    const migrate = () =>
      migrateTakingTurns({
        url: testDatabaseUrl(),
        service,
        schema,
        dataSource: () =>
          new DataSource({
            type: 'postgres',
            url: testDatabaseUrl(),
            schema,
            migrations: [CreateItems1700000000000, ItemsByTime1700000000001],
            migrationsTableName: 'typeorm_migrations',
            extra: serviceSession(`${service}-migrations`),
          }),
      });

    const both = Promise.all([migrate(), migrate()]);
    const outcome = await Promise.race([both.then(() => 'done' as const), sleep(30_000).then(() => 'still waiting' as const)]);

    expect(outcome).toBe('done');
    const applied = await admin.query<{ name: string }>(`select name from "${schema}".typeorm_migrations order by id`);
    expect(applied.rows.map((row) => row.name)).toEqual(['CreateItems1700000000000', 'ItemsByTime1700000000001']);
    const index = await admin.query<{ valid: boolean }>(`select indisvalid as valid from pg_index where indexrelid = to_regclass($1)`, [`"${schema}".items_at_idx`]);
    expect(index.rows).toEqual([{ valid: true }]);
  }, 60_000);

  // A replica's host lost (or its process frozen) while it holds the lock sends nothing more, and closes nothing:
  // PostgreSQL kept its session, and the lock, until TCP keepalive gave up, hours later, while every replica that
  // started meanwhile waited its turn, saying nothing, until its startup probe restarted it.
  it('gives the turn to the next replica when the one migrating stops answering (its host lost, its process frozen)', async () => {
    const other = `${service}-frozen`;
    const frozenSchema = `${schema}_frozen`;
    const holder = spawn(
      process.execPath,
      ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register', 'libs/shared/test/migration-holder.harness.ts', JSON.stringify({ url: testDatabaseUrl(), service: other, schema: frozenSchema, lockIdleTimeoutMs: 3_000 })],
      { cwd: resolve(__dirname, '../../..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      let output = '';
      holder.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await waitFor(() => output.includes('migrating') || undefined, 60_000, 200);
      holder.kill('SIGSTOP');
      const next = migrateTakingTurns({
        url: testDatabaseUrl(),
        service: other,
        schema: frozenSchema,
        lockIdleTimeoutMs: 3_000,
        dataSource: () => new DataSource({ type: 'postgres', url: testDatabaseUrl(), schema: frozenSchema, migrations: [CreateItems1700000000000], migrationsTableName: 'next_migrations', extra: serviceSession(`${other}-migrations`) }),
      });
      next.catch(() => undefined);
      const outcome = await Promise.race([next.then(() => 'migrated' as const), sleep(30_000).then(() => 'still waiting its turn' as const)]);
      expect(outcome).toBe('migrated');
    } finally {
      holder.kill('SIGKILL');
      await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name like $1`, [`tally-${other}%`]);
      await admin.query(`drop schema if exists "${frozenSchema}" cascade`);
    }
  }, 120_000);
});

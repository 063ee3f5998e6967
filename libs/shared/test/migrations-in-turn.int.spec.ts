import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';
import { migrateTakingTurns, migrationSession } from '../src/database/migrations-in-turn.migration';
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

  // A new version's ALTER TABLE needs the table's exclusive lock. Queued behind a long transaction that reads the table
  // (a pg_dump, a verify, a session idle in its transaction), it held every statement the running version sent to that
  // table behind it, for as long as that transaction lasted: the old replicas' writes stopped. It now gives up after
  // a lock timeout, lets them through, and tries again until it gets the lock.
  it('never holds the running version\'s writes behind a migration waiting for a lock: it gives up the wait and tries again', async () => {
    const lockSchema = `${schema}_alter`;
    class AddNote1700000000002 implements MigrationInterface {
      readonly name = 'AddNote1700000000002';
      async up(runner: QueryRunner): Promise<void> {
        await runner.query(`ALTER TABLE "${lockSchema}".items ADD COLUMN note text`);
      }
      async down(runner: QueryRunner): Promise<void> {
        await runner.query(`ALTER TABLE "${lockSchema}".items DROP COLUMN note`);
      }
    }
    await admin.query(`create schema "${lockSchema}"`);
    await admin.query(`create table "${lockSchema}".items (id int primary key, at timestamptz not null)`);
    const reader = new Client({ connectionString: testDatabaseUrl() });
    const writer = new Client({ connectionString: testDatabaseUrl() });
    await Promise.all([reader.connect(), writer.connect()]);
    try {
      await reader.query('BEGIN');
      await reader.query(`select 1 from "${lockSchema}".items limit 1`); // holds the table's share lock until it ends
      const migrating = migrateTakingTurns({
        url: testDatabaseUrl(),
        service: `${service}-alter`,
        schema: lockSchema,
        dataSource: () =>
          new DataSource({ type: 'postgres', url: testDatabaseUrl(), schema: lockSchema, migrations: [AddNote1700000000002], migrationsTableName: 'typeorm_migrations', extra: migrationSession(`${service}-alter`) }),
      });
      migrating.catch(() => undefined);
      // The ALTER is queued for the lock: a write sent now went behind it, and waited for the reader to end.
      await waitFor(async () => (await admin.query(`select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like 'ALTER TABLE%' and application_name = $1`, [`tally-${service}-alter-migrations`])).rowCount === 1, 15_000, 50);
      const write = writer.query(`insert into "${lockSchema}".items (id, at) values (1, now())`).then(() => 'written' as const);
      const outcome = await Promise.race([write, sleep(15_000).then(() => 'waiting behind the migration' as const)]);
      expect(outcome).toBe('written'); // while the reader still holds its lock
      await reader.query('COMMIT');
      await migrating;
      const columns = await admin.query(`select column_name from information_schema.columns where table_schema = $1 and table_name = 'items' order by ordinal_position`, [lockSchema]);
      expect(columns.rows.map((row) => row.column_name)).toEqual(['id', 'at', 'note']);
    } finally {
      await reader.query('ROLLBACK').catch(() => undefined);
      await Promise.all([reader.end(), writer.end()]);
      await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name like $1`, [`tally-${service}-alter%`]);
      await admin.query(`drop schema if exists "${lockSchema}" cascade`);
    }
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

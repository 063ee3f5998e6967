import { DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';
import { migrateTakingTurns } from '../src/database/migrations-in-turn.migration';
import { serviceSession } from '../src/database/service-pool.provider';

/**
 * A replica whose migration takes long (an index built on a large table), run as its own process so that a test can
 * freeze it (SIGSTOP) while it holds its service's migration lock, as a host lost mid-migration would leave it.
 * argv[2]: JSON { url, service, schema, lockIdleTimeoutMs }. Prints "migrating" once it holds the lock.
 */
class TakesLong1700000000000 implements MigrationInterface {
  readonly name = 'TakesLong1700000000000';
  readonly transaction = false;
  async up(runner: QueryRunner): Promise<void> {
    process.stdout.write('migrating\n');
    await runner.query('SELECT pg_sleep(600)');
  }
  async down(runner: QueryRunner): Promise<void> {
    await runner.query('SELECT 1');
  }
}

const { url, service, schema, lockIdleTimeoutMs } = JSON.parse(process.argv[2]) as { url: string; service: string; schema: string; lockIdleTimeoutMs: number };
void migrateTakingTurns({
  url,
  service,
  schema,
  lockIdleTimeoutMs,
  dataSource: () => new DataSource({ type: 'postgres', url, schema, migrations: [TakesLong1700000000000], migrationsTableName: 'holder_migrations', extra: serviceSession(`${service}-migrations`) }),
});

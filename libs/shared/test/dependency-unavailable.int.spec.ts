import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { testDatabaseUrl, waitFor } from '../src/testing/index';
import { unavailableDependency } from '../src';

/**
 * What the services' HTTP filter sees when PostgreSQL drops a connection in the middle of a TypeORM transaction
 * (a restart, a crash, a terminated backend): TypeORM marks the query runner released as soon as its connection
 * reports the error, so the transaction's next statement fails with TypeORM's own error, not the driver's. That is
 * still "PostgreSQL unavailable" (503 + Retry-After), never a 500.
 */
describe('a connection lost inside a TypeORM transaction', () => {
  let dataSource: DataSource;
  let admin: Client;

  beforeAll(async () => {
    dataSource = await new DataSource({ type: 'postgres', url: testDatabaseUrl(), logging: false }).initialize();
    admin = new Client({ connectionString: testDatabaseUrl() });
    await admin.connect();
  });

  afterAll(async () => {
    await admin?.end();
    await dataSource?.destroy();
  });

  it('is classified as PostgreSQL unavailable, whichever error the next statement gets', async () => {
    const runner = dataSource.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    const [{ pid }] = (await runner.query('select pg_backend_pid() as pid')) as { pid: number }[];

    // The server ends this backend between two statements, as a restart does ("terminating connection due to
    // administrator command").
    await admin.query('select pg_terminate_backend($1)', [pid]);
    await waitFor(() => runner.isReleased, 10_000);

    const error = await runner.query('select 1').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeDefined();
    expect(unavailableDependency(error)).toBe('postgres');
    await runner.release().catch(() => undefined);
  });

  it('is classified as PostgreSQL unavailable through DataSource.transaction too, whose manager refuses the next statement', async () => {
    const error = await dataSource
      .transaction(async (manager) => {
        const [{ pid }] = (await manager.query('select pg_backend_pid() as pid')) as { pid: number }[];
        await admin.query('select pg_terminate_backend($1)', [pid]);
        await waitFor(() => manager.queryRunner?.isReleased === true, 10_000);
        await manager.query('select 1');
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeDefined();
    expect(unavailableDependency(error)).toBe('postgres');
  });
});

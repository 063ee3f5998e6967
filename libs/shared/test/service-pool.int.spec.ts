import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { DataSource } from 'typeorm';
import { createServicePool, postgresReady, postgresReadyOf } from '../src/database/service-pool.provider';
import { unavailableDependency } from '../src/errors/dependency-unavailable.errors';
import { testDatabaseUrl } from '../src/testing/index';

describe('a service pool', () => {
  const warnings: string[] = [];
  const pool = createServicePool(testDatabaseUrl(), 2, { warn: (_fields, message) => warnings.push(message) }, 'pool-test', { queryTimeoutMs: 1_000, connectTimeoutMs: 500 });

  afterAll(() => pool.end());

  it('runs its sessions without JIT, named after the service', async () => {
    const { rows } = await pool.query<{ jit: string; name: string }>(`SELECT current_setting('jit') AS jit, current_setting('application_name') AS name`);
    expect(rows).toEqual([{ jit: 'off', name: 'tally-pool-test' }]);
    expect(warnings).toEqual([]);
  });

  it('sends instants to PostgreSQL in UTC whatever the process time zone (Berlin in 1850 was 53 min 28 s ahead of UTC)', () => {
    // A process of its own: the zone must be the process's from the start (Jest's environment keeps its own TZ).
    const script = `
      const { createServicePool } = require('./libs/shared/src/database/service-pool.provider');
      const pool = createServicePool(process.argv[1], 1, { warn: () => undefined }, 'tz-test', { queryTimeoutMs: 5000, connectTimeoutMs: 5000 });
      pool.query("SELECT to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS t", [new Date('1850-01-01T00:00:00.000Z')])
        .then(({ rows }) => { console.log(rows[0].t); return pool.end(); });`;
    const run = spawnSync(process.execPath, ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register', '-e', script, testDatabaseUrl()], {
      cwd: resolve(__dirname, '../../..'),
      env: { ...process.env, TZ: 'Europe/Berlin' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect({ out: run.stdout.trim(), err: run.stderr.trim().slice(-500) }).toEqual({ out: '1850-01-01 00:00:00', err: '' });
  }, 90_000);

  it('ends a transaction left idle and cancels a statement whose client is gone (settings), and gives up on a statement unanswered', async () => {
    const { rows } = await pool.query<{ idle: string; check: string }>(
      `SELECT current_setting('idle_in_transaction_session_timeout') AS idle, current_setting('client_connection_check_interval') AS check`,
    );
    expect(rows).toEqual([{ idle: '5min', check: '5s' }]);
    await expect(pool.query('SELECT pg_sleep(3)')).rejects.toThrow('Query read timeout');
  });

  it('gives up waiting for a connection when every one is busy: an error taken for an unavailable dependency', async () => {
    const held = await Promise.all([pool.connect(), pool.connect()]);
    try {
      const error: unknown = await pool.query('SELECT 1').then(() => undefined, (e: unknown) => e);
      expect((error as Error | undefined)?.message).toMatch(/timeout exceeded when trying to connect/);
      expect(unavailableDependency(error)).toBeDefined();
    } finally {
      for (const client of held) client.release();
    }
    expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('readiness: busy is not down (every connection checked out, one back whole lately, passes); stuck or unreachable is', async () => {
    await pool.query('SELECT 1'); // a connection came back whole just now
    const held = await Promise.all([pool.connect(), pool.connect()]);
    try {
      await expect(postgresReady(pool)).resolves.toBeUndefined();
      // Nothing back within the window: the slots are held by connections that do not come back; asked, and it fails.
      await expect(postgresReady(pool, 0)).rejects.toThrow(/timeout exceeded when trying to connect/);
    } finally {
      for (const client of held) client.release();
    }
    await expect(postgresReady(pool)).resolves.toBeUndefined(); // a free connection: asked
    const nowhere = createServicePool('postgres://postgres@127.0.0.1:1/none', 2, { warn: () => undefined }, 'nowhere', { queryTimeoutMs: 1_000, connectTimeoutMs: 1_000 });
    try {
      await expect(postgresReady(nowhere)).rejects.toThrow();
    } finally {
      await nowhere.end();
    }
  });

  it("readiness of a TypeORM data source asks through its driver's pool", async () => {
    const dataSource = await new DataSource({ type: 'postgres', url: testDatabaseUrl(), extra: { max: 1 } }).initialize();
    try {
      await expect(postgresReadyOf(dataSource)()).resolves.toBeUndefined();
    } finally {
      await dataSource.destroy();
    }
  });
});

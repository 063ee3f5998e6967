import type { DataSource } from 'typeorm';

/**
 * What a service's TypeORM data source sets on its PostgreSQL sessions, read back from the server: the session's
 * `application_name` as `pg_stat_activity` shows it, and its `jit` setting. Initializes the source (without its
 * migrations when `migrationsRun` is left out of the options it was built with) and destroys it after.
 */
export async function sessionSettingsOf(source: DataSource): Promise<{ name: string; jit: string }> {
  const db = await source.initialize();
  try {
    const [row] = await db.query(`select application_name as name, current_setting('jit') as jit from pg_stat_activity where pid = pg_backend_pid()`);
    return row as { name: string; jit: string };
  } finally {
    await db.destroy();
  }
}

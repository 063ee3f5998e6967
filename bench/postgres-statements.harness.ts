/**
 * PostgreSQL's time per statement of one stage (its schema), per event, while the ledger applies a load: where the
 * largest share of the machine's CPU goes (docs/benchmarks.md, session 34), in figures a lever can be measured by.
 * Only where `pg_stat_statements` is preloaded: loading it restarts the server, which the bench does not do to a
 * cluster it shares (the machines' PostgreSQL is not configured so), so it is an opt-in of whoever runs the bench:
 *   ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'; then restart PostgreSQL
 * (and `ALTER SYSTEM RESET shared_preload_libraries` and a restart to undo). The statistics are the cluster's: a
 * phase resets them when it starts and keeps only the statements that name its schema.
 */
import type { Pool } from 'pg';

export interface StatementTime {
  /** The statement's text, whitespace folded and the stage's schema left out, cut to a readable length. */
  statement: string;
  calls: number;
  /** Time inside the statement (wall time: lock waits and a slow client's reading included), µs per event. */
  microsPerEvent: number;
}

export class PostgresStatements {
  private constructor(private readonly pool: Pool) {}

  /** The statistics, when this server preloads them (the extension is created in the bench's database if missing). */
  static async open(pool: Pool): Promise<PostgresStatements | undefined> {
    const { rows } = await pool.query<{ loaded: boolean }>(`select current_setting('shared_preload_libraries') ~ 'pg_stat_statements' as loaded`);
    if (!rows[0].loaded) return undefined;
    await pool.query('create extension if not exists pg_stat_statements');
    return new PostgresStatements(pool);
  }

  async reset(): Promise<void> {
    await this.pool.query('select pg_stat_statements_reset()');
  }

  /** The `top` statements naming `schema`, by their total time since the reset, in µs per event of `events`. */
  async perEvent(schema: string, events: number, top = 6): Promise<StatementTime[]> {
    const { rows } = await this.pool.query<{ query: string; calls: string; total_ms: number }>(
      `select query, calls::text, total_exec_time as total_ms from pg_stat_statements
        where dbid = (select oid from pg_database where datname = current_database()) and strpos(query, $1) > 0
        order by total_exec_time desc limit $2`,
      [`"${schema}".`, top],
    );
    return rows.map((row) => ({
      statement: row.query.replaceAll(`"${schema}".`, '').replace(/\s+/g, ' ').trim().slice(0, 90),
      calls: Number(row.calls),
      microsPerEvent: (row.total_ms * 1000) / events,
    }));
  }
}

import { QueryFailedError } from 'typeorm';

/**
 * Whether a TypeORM query failed on a unique constraint (SQLSTATE 23505): two transactions inserted the same key at
 * once, which `SELECT … FOR UPDATE` cannot prevent while the row does not exist yet. The loser retries, and then
 * finds and locks the winner's row.
 */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof QueryFailedError && (error.driverError as { code?: string } | undefined)?.code === '23505';
}

/**
 * `work` (a transaction) run again when it lost such a race, at most `attempts` times in all: the next run finds and
 * locks the winner's row. A unique violation on the last attempt is thrown as it is.
 */
export async function retriedOnInsertRace<T>(work: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (!isUniqueViolation(error) || attempt >= attempts) throw error;
    }
  }
}

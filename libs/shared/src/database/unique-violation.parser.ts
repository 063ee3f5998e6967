import { QueryFailedError } from 'typeorm';

/**
 * Whether a TypeORM query failed on a unique constraint (SQLSTATE 23505): two transactions inserted the same key at
 * once, which `SELECT … FOR UPDATE` cannot prevent while the row does not exist yet. The loser retries, and then
 * finds and locks the winner's row.
 */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof QueryFailedError && (error.driverError as { code?: string } | undefined)?.code === '23505';
}

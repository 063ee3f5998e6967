import type { Pool } from 'pg';

/**
 * Ends a `pg` pool and waits until each of its connections has closed. `pool.end()` resolves as soon as it has asked
 * its idle clients to end, before their sessions are gone: a session the server ends in that window (a `DROP DATABASE
 * … WITH (FORCE)` or a shutdown right after) reaches the pool's idle-error listener, and a pool without an `error`
 * listener throws it as an unhandled error into whatever runs next.
 */
export async function endPool(pool: Pool, timeoutMs = 5_000): Promise<void> {
  let open = pool.totalCount;
  // A session that ends while we wait is expected now: not an unhandled error.
  pool.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => {
    if (open === 0) return resolve();
    pool.on('remove', () => {
      open -= 1;
      if (open === 0) resolve();
    });
  });
  await pool.end();
  // A client whose connection failed while connecting leaves without a 'remove': do not wait for it for ever.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
}

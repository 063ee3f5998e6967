/**
 * Deletes in batches, one statement each (short transactions on a table others write), until a batch deletes fewer
 * than `batch` rows (none left) or `stopping()` says the owner shuts down; returns how many rows went. `deleteBatch`
 * deletes at most `batch` rows and says how many. A purge of years of rows thus ends between two batches on shutdown.
 */
export async function deleteInBatches(deleteBatch: () => Promise<number>, batch: number, stopping: () => boolean): Promise<number> {
  let deleted = 0;
  for (;;) {
    const count = await deleteBatch();
    deleted += count;
    if (count < batch || stopping()) return deleted;
  }
}

import { deleteInBatches } from './batched-delete.query';

describe('deleteInBatches', () => {
  it('given batches full until a short one, then it deletes batch after batch and returns the total', async () => {
    const counts = [3, 3, 1, 3];
    const deleteBatch = jest.fn(async () => counts.shift() as number);
    expect(await deleteInBatches(deleteBatch, 3, () => false)).toBe(7);
    expect(deleteBatch).toHaveBeenCalledTimes(3);
  });

  it('given the owner stopping, then it ends after the batch under way, full or not', async () => {
    let stopping = false;
    const deleteBatch = jest.fn(async () => {
      stopping = true;
      return 3;
    });
    expect(await deleteInBatches(deleteBatch, 3, () => stopping)).toBe(3);
    expect(deleteBatch).toHaveBeenCalledTimes(1);
  });
});

import { chunkBySize, type OutgoingMessage } from './kafka.producer';

const message = (key: string, valueBytes: number): OutgoingMessage => ({ key, value: 'x'.repeat(valueBytes) });

describe('chunkBySize', () => {
  it('keeps a send that fits in one chunk', () => {
    const messages = [message('a', 100), message('b', 100)];
    expect(chunkBySize(messages, 10_000)).toEqual([messages]);
  });

  it('splits in order so that no chunk exceeds the limit', () => {
    const messages = Array.from({ length: 10 }, (_, i) => message(`k${i}`, 1_000));
    const chunks = chunkBySize(messages, 3_500);
    expect(chunks.map((chunk) => chunk.length)).toEqual([3, 3, 3, 1]);
    expect(chunks.flat()).toEqual(messages);
  });

  it('counts headers and multi-byte characters as bytes, not characters', () => {
    const wide = { key: 'k', value: 'é'.repeat(500), headers: { reason: 'r'.repeat(500) } };
    expect(chunkBySize([wide, wide], 2_000)).toHaveLength(2);
  });

  it('sends a message bigger than the limit alone rather than dropping it', () => {
    const messages = [message('a', 10), message('big', 5_000), message('c', 10)];
    expect(chunkBySize(messages, 1_000)).toEqual([[messages[0]], [messages[1]], [messages[2]]]);
  });

  it('gives no chunk for no messages', () => {
    expect(chunkBySize([], 1_000)).toEqual([]);
  });
});

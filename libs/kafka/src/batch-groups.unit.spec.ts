import { groupsOf } from './batch.consumer';

/** Which gathered chunks share a transaction (BatchConsumer.applyTogether). */
const chunk = (topic: string, partition: number, messages: number) => ({ part: { ref: { groupId: 'g', topic, partition }, chunk: new Array<number>(messages).fill(0) } });
const shape = (groups: ReturnType<typeof chunk>[][]) => groups.map((group) => group.map(({ part }) => `${part.ref.topic}:${part.ref.partition}`));

describe('groupsOf', () => {
  it('puts the chunks of one topic that arrived together in one group', () => {
    expect(shape(groupsOf([chunk('u', 0, 10), chunk('u', 3, 20), chunk('u', 5, 1)], 1_000))).toEqual([['u:0', 'u:3', 'u:5']]);
  });

  it('keeps topics apart (one account may be on several topics)', () => {
    expect(shape(groupsOf([chunk('u', 0, 10), chunk('v', 0, 10), chunk('u', 1, 10)], 1_000))).toEqual([['u:0', 'u:1'], ['v:0']]);
  });

  it('starts a new group once the next chunk would pass the message bound; a chunk at the bound goes alone', () => {
    expect(shape(groupsOf([chunk('u', 0, 600), chunk('u', 1, 400), chunk('u', 2, 1), chunk('u', 3, 1_000), chunk('u', 4, 5)], 1_000))).toEqual([
      ['u:0', 'u:1'],
      ['u:2'],
      ['u:3'],
      ['u:4'],
    ]);
  });

  it('with a bound of 0 applies every chunk on its own', () => {
    expect(shape(groupsOf([chunk('u', 0, 1), chunk('u', 1, 1), chunk('u', 2, 1)], 0))).toEqual([['u:0'], ['u:1'], ['u:2']]);
  });

  it('never puts two chunks of one partition in one group', () => {
    expect(shape(groupsOf([chunk('u', 0, 1), chunk('u', 0, 1), chunk('u', 1, 1)], 1_000))).toEqual([['u:0'], ['u:0', 'u:1']]);
  });

  it('keeps every chunk exactly once, in arrival order within a group', () => {
    const gathered = Array.from({ length: 40 }, (_, i) => chunk(i % 3 === 0 ? 'v' : 'u', i % 7, (i * 37) % 500));
    const groups = groupsOf(gathered, 1_000);
    expect(groups.flat().sort((a, b) => gathered.indexOf(a) - gathered.indexOf(b))).toEqual(gathered);
    for (const group of groups) {
      expect(group.map((item) => gathered.indexOf(item))).toEqual([...group.map((item) => gathered.indexOf(item))].sort((a, b) => a - b));
      expect(new Set(group.map(({ part }) => part.ref.topic)).size).toBe(1);
      expect(new Set(group.map(({ part }) => part.ref.partition)).size).toBe(group.length);
      if (group.length > 1) expect(group.reduce((n, { part }) => n + part.chunk.length, 0)).toBeLessThanOrEqual(1_000);
    }
  });
});

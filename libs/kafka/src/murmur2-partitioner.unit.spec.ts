import fc from 'fast-check';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { Murmur2Partitioner, murmur2, partitionOfKey } from './murmur2-partitioner.model';

/** Partitions as kafkajs sees them in a topic's metadata; `leaderless` ones have no leader (-1). */
const metadata = (count: number, leaderless: number[] = []): PartitionMetadata[] =>
  Array.from({ length: count }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: leaderless.includes(partitionId) ? -1 : 0, replicas: [0], isr: [0] }));

describe('Murmur2Partitioner', () => {
  it('given any key (text, unicode or bytes) and partition count, puts it where kafkajs\'s DefaultPartitioner does', () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    const ours = Murmur2Partitioner();
    const key = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)));
    fc.assert(
      fc.property(key, fc.integer({ min: 1, max: 64 }), (k, count) => {
        const args = { topic: 't', partitionMetadata: metadata(count), message: { key: k, value: null } };
        expect(ours(args)).toBe(kafkajs(args));
      }),
      { numRuns: 5_000 },
    );
  });

  it('given the account ids the ledger keys by, agrees with kafkajs on all of them', () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    const partitionMetadata = metadata(6);
    for (let i = 0; i < 20_000; i++) {
      const key = `acct-${i}`;
      expect(partitionOfKey(key, 6)).toBe(kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } }));
    }
  });

  it('matches the Java client\'s murmur2 on known values', () => {
    // Kafka's UtilsTest.testMurmur2: the Java client's hashes of these keys.
    const cases: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ];
    for (const [key, hash] of cases) expect(murmur2(key)).toBe(hash);
  });

  it('given a message with a partition, sends it there whatever its key', () => {
    const partitioner = Murmur2Partitioner();
    expect(partitioner({ topic: 't', partitionMetadata: metadata(6), message: { key: 'acct-1', value: null, partition: 4 } })).toBe(4);
  });

  it('given messages without a key, goes round the partitions that have a leader', () => {
    const partitioner = Murmur2Partitioner();
    const partitionMetadata = metadata(4, [1]);
    const chosen = Array.from({ length: 9 }, () => partitioner({ topic: 't', partitionMetadata, message: { value: null } }));
    expect(new Set(chosen)).toEqual(new Set([0, 2, 3]));
    // Consecutive messages take consecutive available partitions.
    for (let i = 1; i < chosen.length; i++) expect([0, 2, 3].indexOf(chosen[i])).toBe(([0, 2, 3].indexOf(chosen[i - 1]) + 1) % 3);
  });
});

import fc from 'fast-check';
import { Map as ImmutableMap, hash } from 'immutable';

/**
 * immutable 5.2.1 is patched (patches/immutable+5.2.1.patch, applied by patch-package on npm ci): strings longer than
 * 16 characters are hashed every time instead of through its 255-entry cache, which keys that are all distinct (usage
 * ids, idempotency keys) reset every 255 inserts. The hash must stay the one immutable defines (the JVM's
 * String.hashCode, folded to a 31-bit integer), so maps keep finding what they hold.
 */
describe('immutable, patched: string hashes without the cache', () => {
  it('hashes any string, short or long, repeated or not, as String.hashCode folded to 31 bits', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (text) => {
        expect(hash(text)).toBe(jvmHash(text));
        expect(hash(text)).toBe(jvmHash(text)); // a second time: nothing cached changes it
      }),
      { numRuns: 2_000 },
    );
  });

  it('a map keyed by thousands of distinct long ids finds each, and only those', () => {
    const ids = Array.from({ length: 5_000 }, (_, i) => `usage:bench-7f3a9c21-0000-${i}`);
    const map = ids.reduce((m, id, i) => m.set(id, i), ImmutableMap<string, number>());
    expect(map.size).toBe(ids.length);
    ids.forEach((id, i) => expect(map.get(id)).toBe(i));
    expect(map.has('usage:bench-7f3a9c21-0000-5000')).toBe(false);
  });
});

/** immutable's documented string hash: s[0]·31^(n-1) + … + s[n-1] in 32-bit arithmetic, then its smi() fold. */
function jvmHash(text: string): number {
  let hashed = 0;
  for (let i = 0; i < text.length; i++) hashed = (31 * hashed + text.charCodeAt(i)) | 0;
  return ((hashed >>> 1) & 0x40000000) | (hashed & 0xbfffffff);
}

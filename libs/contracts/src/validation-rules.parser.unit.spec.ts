import { parseMessage } from './message-registry.contract';
import { ContractViolation } from './contract.errors';
import { Topics } from './topics.contract';
import fc from 'fast-check';
import { findUnsafeJson, isSafeJson, isStorableText, locateUnsafeJson, truncateText } from './validation-rules.parser';

const usage = (data: object) =>
  JSON.stringify({ id: 'u-1', type: 'UsageRecorded', version: 1, accountId: 'acct-1', occurredAt: '2026-11-21T10:00:00Z', data });
const chat = { feature: 'chat', model: 'gpt-4o', inputTokens: 1, outputTokens: 1 };

describe('JSON that no store can hold', () => {
  it.each([
    ['a NUL in a value', { a: { b: 'x\u0000' } }, 'a.b'],
    ['a lone high surrogate', { list: ['ok', '\ud83d'] }, 'list.1'],
    ['a lone low surrogate', { s: '\ude00x' }, 's'],
    ['a NUL in a property name', { a: { 'k\u0000': 1 } }, 'a'],
    ['a property named constructor', JSON.parse('{"a": {"constructor": "x"}}') as object, 'a'],
    ['a property named __proto__', JSON.parse('{"list": [{"__proto__": {}}]}') as object, 'list.0'],
    ['a property named toString at the root', JSON.parse('{"toString": 1}') as object, '(root)'],
  ])('finds %s and names its field', (_name, value, field) => {
    expect(findUnsafeJson(value)).toEqual({ field, reason: expect.any(String) });
  });

  it('given any JSON (with NULs, lone surrogates, reserved names, deep nesting), when checked fast, then it answers as the long walk', () => {
    const text = fc.oneof(fc.string(), fc.constantFrom('a\u0000', '\ud83d', '\ude00', '🙂', 'constructor', 'toString', '__proto__', 'x'));
    const json = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, text, fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie('node'), { maxLength: 3 }),
        fc.array(fc.tuple(text, tie('node')), { maxLength: 3 }).map((entries) => {
          const object = {};
          for (const [key, child] of entries) Object.defineProperty(object, key, { value: child, enumerable: true, writable: true, configurable: true });
          return object;
        })),
    })).node;
    let unsafe = 0;
    fc.assert(
      fc.property(json, fc.integer({ min: 1, max: 4 }), (value, maxDepth) => {
        const located = locateUnsafeJson(value, '', maxDepth);
        if (located) unsafe += 1;
        expect(isSafeJson(value, maxDepth)).toBe(located === undefined);
        expect(findUnsafeJson(value, '', maxDepth)).toEqual(located);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 2000) },
    );
    expect(unsafe).toBeGreaterThan(100);
  });

  it('given any string, when asked whether a store can hold it, then it answers as the regular expression that defines it', () => {
    // The definition: a NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
    // eslint-disable-next-line no-control-regex -- NUL is exactly what this must find
    const unstorable = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
    const piece = fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom('\u0000', '\ud83d', '\ude00', '🙂', '\udbff\udfff', 'é', 'a'));
    const text = fc.array(piece, { maxLength: 6 }).map((pieces) => pieces.join(''));
    let refused = 0;
    fc.assert(
      fc.property(text, (value) => {
        if (unstorable.test(value)) refused += 1;
        expect(isStorableText(value)).toBe(!unstorable.test(value));
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 5000) },
    );
    expect(refused).toBeGreaterThan(500);
  });

  it('passes surrogate pairs, other control characters and plain JSON', () => {
    expect(findUnsafeJson({ emoji: '🙂', tab: 'a\tb', n: [1, null, true, { x: 'y' }] })).toBeUndefined();
  });

  it('stops at 32 levels without recursing (10,000 deep does not overflow the stack)', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i += 1) deep = [deep];
    expect(findUnsafeJson(deep)).toEqual({ field: Array.from({ length: 32 }, () => '0').join('.'), reason: 'nests deeper than 32 levels' });
    let ok: unknown = 1;
    for (let i = 0; i < 32; i += 1) ok = [ok];
    expect(findUnsafeJson(ok)).toBeUndefined();
  });

  it('makes a Kafka-direct usage message with a reserved name in its metadata a contract violation, not a TypeError (was UNPARSEABLE)', () => {
    for (const name of ['constructor', 'toString', '__proto__']) {
      const raw = usage(chat).replace(/}}$/, `,"metadata":{"${name}":"x"}}}`);
      expect(() => parseMessage(Topics.usageEvents, raw)).toThrow(ContractViolation);
    }
  });

  it('makes a Kafka-direct usage message with a NUL in its metadata a contract violation (dead-lettered, not stored)', () => {
    expect(() => parseMessage(Topics.usageEvents, usage({ ...chat, metadata: { note: 'a\u0000b' } }))).toThrow(ContractViolation);
    expect(() => parseMessage(Topics.usageEvents, usage({ ...chat, metadata: { note: 'fine' } }))).not.toThrow();
  });
});

describe('truncateText', () => {
  it('cuts at most max UTF-16 units and never between the two halves of a surrogate pair, so the result stays storable', () => {
    // A notification's attempt log keeps 500 units of an SMTP server's error text in jsonb, which refuses a lone
    // surrogate: a plain slice that split an emoji failed the write on every retry.
    const error = `${'x'.repeat(499)}🙂 and more`;
    expect(isStorableText(error.slice(0, 500))).toBe(false);
    expect(truncateText(error, 500)).toBe('x'.repeat(499));
    expect(isStorableText(truncateText(error, 500))).toBe(true);
    expect(truncateText(`${'x'.repeat(498)}🙂 and more`, 500)).toBe(`${'x'.repeat(498)}🙂`);
    expect(truncateText('short', 500)).toBe('short');
  });
});

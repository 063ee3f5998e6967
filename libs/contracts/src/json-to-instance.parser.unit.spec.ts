import fc from 'fast-check';
import { plainToInstance, Type } from 'class-transformer';
import { IsOptional, IsString, ValidateNested } from 'class-validator';
import { jsonToInstance, rememberedPropertyTypes } from './json-to-instance.parser';
import { UsageRecordedV1 } from './messages/usage-recorded.v1.contract';
import { CONTRACT_CLASSES, changedMessage } from './testing/contract-messages.fixtures';

const classTransformer = (cls: Parameters<typeof plainToInstance>[0], plain: unknown) => plainToInstance(cls, plain, { enableImplicitConversion: false }) as object;

describe('jsonToInstance', () => {
  it('given every message class with its seeds, when built, then it is what class-transformer builds, prototypes included', () => {
    for (const { name, cls, seeds } of CONTRACT_CLASSES) {
      for (const seed of seeds) {
        const plain = JSON.parse(JSON.stringify(seed)) as object;
        const built = jsonToInstance(cls, plain);
        expect({ name, vouched: built !== undefined }).toEqual({ name, vouched: true });
        expect(built).toStrictEqual(classTransformer(cls, plain));
      }
    }
  });

  it('given seeds changed at random, when built, then it is what class-transformer builds, or it leaves the value to class-transformer', () => {
    let left = 0;
    let built = 0;
    fc.assert(
      fc.property(changedMessage, ({ name, cls, plain }) => {
        if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) return; // validateInto refuses these first
        const fast = jsonToInstance(cls, plain);
        if (fast === undefined) {
          left += 1;
          return;
        }
        built += 1;
        expect({ name, plain, built: fast }).toStrictEqual({ name, plain, built: classTransformer(cls, plain) });
        expect(Object.getPrototypeOf(fast)).toBe(cls.prototype);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 3000) },
    );
    // Both paths are taken: the special names (constructor, __proto__, toString, ...) go to class-transformer.
    expect({ left: left > 10, built: built > 1000 }).toEqual({ left: true, built: true });
  });

  it('given many values with property names of their own, when built, then only the declared properties are remembered', () => {
    const plain = { feature: 'chat', model: 'gpt-4o', inputTokens: 1, outputTokens: 1 };
    jsonToInstance(UsageRecordedV1, plain);
    const declared = rememberedPropertyTypes(UsageRecordedV1);
    for (let i = 0; i < 1_000; i += 1) jsonToInstance(UsageRecordedV1, { ...plain, [`junk${i}`]: i });
    expect(declared).toBeGreaterThan(0);
    expect(rememberedPropertyTypes(UsageRecordedV1)).toBe(declared);
  });

  it('given a declared property the instance inherits as a function, when built again and again, then it is left to class-transformer every time', () => {
    class Labelled {
      @IsString() label!: string;
      @IsOptional() @IsString() shout?: string;
    }
    Object.defineProperty(Labelled.prototype, 'shout', { value: () => 'inherited', enumerable: false });
    for (let i = 0; i < 3; i += 1) {
      expect(jsonToInstance(Labelled, { label: `l-${i}` })).toStrictEqual(classTransformer(Labelled, { label: `l-${i}` }));
      expect(jsonToInstance(Labelled, { label: 'x', shout: 'own' })).toBeUndefined();
    }
  });

  it('given property names the generated copy must quote and a nested class, when built, then it is what class-transformer builds', () => {
    class Inner {
      @IsString() ["it's \"quoted\"\\"]!: string;
    }
    class Outer {
      @IsString() ['line\u2028break']!: string;
      @ValidateNested() @Type(() => Inner) ['${"\n"}']!: Inner[];
    }
    const plain = { 'line\u2028break': 'a', '${"\n"}': [{ ["it's \"quoted\"\\"]: 'b' }, { other: 1 }], extra: { nested: [1, 'x'] } };
    const built = jsonToInstance(Outer, JSON.parse(JSON.stringify(plain)) as object);
    expect(built).toStrictEqual(classTransformer(Outer, plain));
    expect(Object.getPrototypeOf((built as unknown as Record<string, object[]>)['${"\n"}'][0])).toBe(Inner.prototype);
  });

  it('given a property class-transformer skips, when built, then it leaves the value to class-transformer', () => {
    const { cls } = CONTRACT_CLASSES[0];
    for (const name of ['constructor', '__proto__', 'toString']) {
      expect(jsonToInstance(cls, JSON.parse(`{"${name}": "x"}`) as object)).toBeUndefined();
      expect(jsonToInstance(cls, JSON.parse(`{"data": {"${name}": "x"}}`) as object)).toBeUndefined();
    }
  });
});

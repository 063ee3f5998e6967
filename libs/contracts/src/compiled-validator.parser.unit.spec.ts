import fc from 'fast-check';
import { plainToInstance } from 'class-transformer';
import { IsInt, IsString, Matches, MaxLength, Min, ValidateIf, validateSync } from 'class-validator';
import { passesValidation } from './compiled-validator.parser';
import { CONTRACT_CLASSES, changedMessage } from './testing/contract-messages.fixtures';

const OPTIONS = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true } as const;
const classValidatorPasses = (instance: object) => validateSync(instance, OPTIONS).length === 0;
/** What validateInto validates: class-transformer's instance of the JSON. */
const instanceOf = (cls: Parameters<typeof plainToInstance>[0], plain: unknown) => plainToInstance(cls, plain, { enableImplicitConversion: false }) as object;

describe('the compiled validator', () => {
  it('given every message class with its seeds, when validated, then both it and class-validator pass them', () => {
    for (const { name, cls, seeds } of CONTRACT_CLASSES) {
      expect({ name, seeds: seeds.length > 0 }).toEqual({ name, seeds: true });
      for (const seed of seeds) {
        const instance = instanceOf(cls, JSON.parse(JSON.stringify(seed)));
        expect({ name, classValidator: validateSync(instance, OPTIONS).map((e) => e.toString()) }).toEqual({ name, classValidator: [] });
        expect({ name, compiled: passesValidation(instance) }).toEqual({ name, compiled: true });
      }
    }
  });

  it('given seeds changed at random (a value set, a field removed, a field added, up to three times), when validated, then it answers as class-validator', () => {
    let refused = 0;
    fc.assert(
      fc.property(changedMessage, ({ name, cls, plain }) => {
        if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) return; // validateInto refuses these first
        let instance: object;
        try {
          instance = instanceOf(cls, plain);
        } catch {
          return; // class-transformer cannot build it (validateInto answers that before validating)
        }
        const expected = classValidatorPasses(instance);
        if (!expected) refused += 1;
        expect({ name, plain, passes: passesValidation(instance) }).toEqual({ name, plain, passes: expected });
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 3000) },
    );
    // The changes must reach both answers, or the property says little.
    expect(refused).toBeGreaterThan(100);
  });

  it('given property names the generated check must quote, conditions and rules for each item, when validated, then it answers as class-validator', () => {
    class Quoted {
      @IsString()
      ["it's \"quoted\"\\"]!: unknown;

      @ValidateIf((o: Quoted) => o['line\u2028break'] !== 'skip')
      @IsString()
      ['line\u2028break']!: unknown;

      @IsInt({ each: true })
      @Min(1, { each: true })
      ['${"\n"}']!: unknown;
    }
    const value = fc.oneof(fc.string({ maxLength: 3 }), fc.constant('skip'), fc.integer({ min: -2, max: 2 }), fc.array(fc.integer({ min: -1, max: 2 }), { maxLength: 3 }), fc.constant(undefined));
    fc.assert(
      fc.property(value, value, value, (quoted, line, items) => {
        const instance = Object.assign(new Quoted(), { ["it's \"quoted\"\\"]: quoted, ['line\u2028break']: line, ['${"\n"}']: items });
        expect({ quoted, line, items, passes: passesValidation(instance) }).toEqual({ quoted, line, items, passes: classValidatorPasses(instance) });
      }),
      { numRuns: 2_000 },
    );
  });

  it('given an object of a class without rules, when validated, then it fails as forbidUnknownValues does', () => {
    class NoRules {}
    expect(classValidatorPasses(new NoRules())).toBe(false);
    expect(passesValidation(new NoRules())).toBe(false);
  });

  it('given strings around a @MaxLength of any characters (surrogate pairs, presentation selectors), when validated, then it answers as class-validator', () => {
    class Named {
      @MaxLength(6)
      name!: unknown;
    }
    const pieces = fc.constantFrom('a', 'é', '\u{1F600}', '\uFE0F', '\uFE0E', '\uD83D', '\uDE00', '\u2764');
    fc.assert(
      fc.property(fc.oneof(fc.array(pieces, { maxLength: 12 }).map((p) => p.join('')), fc.string({ maxLength: 12 }), fc.integer()), (name) => {
        const instance = Object.assign(new Named(), { name });
        expect({ name, passes: passesValidation(instance) }).toEqual({ name, passes: classValidatorPasses(instance) });
      }),
      { numRuns: 3_000 },
    );
  });

  it('given any value for a @Matches (plain, global and case-insensitive patterns), when validated, then it answers as class-validator', () => {
    class Patterned {
      @Matches(/^[a-z]{1,3}-\d$/)
      plain!: unknown;

      @Matches(/b/g)
      global!: unknown;

      @Matches('^x', 'i')
      modified!: unknown;
    }
    const text = fc.stringMatching(/^[a-zA-Z0-9-]{0,6}$/);
    fc.assert(
      fc.property(fc.oneof(text, fc.integer()), fc.oneof(text, fc.constant(null)), text, (plain, global, modified) => {
        const instance = Object.assign(new Patterned(), { plain, global, modified });
        // Twice: a global pattern's lastIndex must not carry one answer into the next.
        for (let i = 0; i < 2; i++) expect({ plain, global, modified, passes: passesValidation(instance) }).toEqual({ plain, global, modified, passes: classValidatorPasses(instance) });
      }),
      { numRuns: 3_000 },
    );
  });
});

import fc from 'fast-check';
import { plainToInstance } from 'class-transformer';
import { MaxLength, validateSync } from 'class-validator';
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
});

import { isDeepStrictEqual } from 'node:util';
import { plainToInstance, type ClassConstructor } from 'class-transformer';
import { ValidationError, registerDecorator, validateSync, type ValidationOptions } from 'class-validator';
import { MAX_BALANCE_MICROS, formatCredits, isCreditString, parseCredits, type Micro } from '@tally/money';
import { passesValidation } from './compiled-validator.parser';
import { ContractViolation, type ContractViolationCode, type FieldIssue } from './contract.errors';
import { jsonToInstance } from './json-to-instance.parser';
import { findUnsafeJson } from './validation-rules.parser';

/** What every edge transforms and validates with (the compiled paths build and answer the same for these options). */
const TRANSFORM_OPTIONS = { enableImplicitConversion: false } as const;
const VALIDATE_OPTIONS = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true } as const;
let crossCheck = false;

/**
 * For tests (jest.setup.js turns it on for every test file): each value is also built by class-transformer and
 * validated by class-validator, and any difference from the compiled paths is an error, so the whole suite holds
 * them to the same answers.
 */
export function crossCheckCompiledValidation(on: boolean): void {
  crossCheck = on;
}

/** Account ids, usage ids, idempotency keys: 1–128 printable characters without spaces. */
export const ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

export function flattenValidationErrors(errors: ValidationError[], prefix = ''): FieldIssue[] {
  return errors.flatMap((error) => {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((reason) => ({ field, reason }));
    return [...own, ...flattenValidationErrors(error.children ?? [], field)];
  });
}

/**
 * Turns plain JSON into an instance of `cls` and validates it; unknown properties are refused.
 * `plainToInstance` alone validates nothing, so every edge goes through here.
 */
export function validateInto<T extends object>(
  cls: ClassConstructor<T>,
  plain: unknown,
  code: ContractViolationCode = 'INVALID_PAYLOAD',
  prefix = '',
  /** `plain` is part of a value already found safe (findUnsafeJson), e.g. a message's data after its envelope. */
  { checkedSafe = false }: { checkedSafe?: boolean } = {},
): T {
  if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) {
    throw new ContractViolation(code, [{ field: prefix || '(root)', reason: 'must be a JSON object' }]);
  }
  const unsafe = checkedSafe ? undefined : findUnsafeJson(plain, prefix);
  if (unsafe) throw new ContractViolation(code, [unsafe]);
  // The common case (plain JSON, a valid value) takes the compiled paths; class-transformer builds what they do not
  // vouch for, and class-validator itself explains a refusal.
  const instance = jsonToInstance(cls, plain) ?? plainToInstance(cls, plain, TRANSFORM_OPTIONS);
  const passes = passesValidation(instance);
  if (passes && !crossCheck) return instance;
  if (crossCheck && !isDeepStrictEqual(instance, plainToInstance(cls, plain, TRANSFORM_OPTIONS))) {
    throw new Error(`jsonToInstance and class-transformer built different ${cls.name} instances`);
  }
  const errors = validateSync(instance, VALIDATE_OPTIONS);
  if (crossCheck && passes !== (errors.length === 0)) {
    throw new Error(`compiled validator and class-validator disagree on ${cls.name} (compiled: ${passes ? 'pass' : 'fail'})`);
  }
  if (errors.length > 0) throw new ContractViolation(code, flattenValidationErrors(errors, prefix));
  return instance;
}

/**
 * A decimal string of credits with at most 6 decimals ("6.998712"), never negative and at most `max` micro-credits;
 * amounts are never JSON numbers. `max` defaults to MAX_BALANCE_MICROS (the bound of anything the ledger stores);
 * edges that take one amount in (HTTP requests, plan allocations) pass MAX_AMOUNT_MICROS.
 */
export function IsCreditAmount(options?: ValidationOptions & { positive?: boolean; max?: Micro }) {
  const { positive = false, max = MAX_BALANCE_MICROS, ...validationOptions } = options ?? {};
  const isShaped = (value: unknown): value is string =>
    isCreditString(value) && !value.startsWith('-') && (!positive || /[1-9]/.test(value));
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isCreditAmount',
      target: target.constructor,
      propertyName,
      options: {
        message: ({ value }) =>
          isShaped(value)
            ? `${propertyName} must be at most ${formatCredits(max)} credits`
            : `${propertyName} must be a decimal string of credits with at most 6 decimals${positive ? ', greater than zero' : ''}`,
        ...validationOptions,
      },
      validator: { validate: (value: unknown) => isShaped(value) && parseCredits(value) <= max },
    });
}

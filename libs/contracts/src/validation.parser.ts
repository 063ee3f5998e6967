import { plainToInstance, type ClassConstructor } from 'class-transformer';
import { ValidationError, registerDecorator, validateSync, type ValidationOptions } from 'class-validator';
import { MAX_BALANCE_MICROS, formatCredits, isCreditString, parseCredits, type Micro } from '@tally/money';
import { ContractViolation, type ContractViolationCode, type FieldIssue } from './contract.errors';
import { findUnsafeJson } from './validation-rules.parser';

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
): T {
  if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) {
    throw new ContractViolation(code, [{ field: prefix || '(root)', reason: 'must be a JSON object' }]);
  }
  const unsafe = findUnsafeJson(plain, prefix);
  if (unsafe) throw new ContractViolation(code, [unsafe]);
  const instance = plainToInstance(cls, plain, { enableImplicitConversion: false });
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true });
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

import { validateSync } from 'class-validator';
import { MAX_AMOUNT_MICROS } from '@tally/money';
import { IsCreditAmount } from './validation.parser';

class Balance {
  @IsCreditAmount() available!: unknown;
}

class Grant {
  @IsCreditAmount({ positive: true, max: MAX_AMOUNT_MICROS }) amount!: unknown;
}

const problems = (cls: new () => object, field: string, value: unknown): string[] =>
  validateSync(Object.assign(new cls(), { [field]: value })).flatMap((error) => Object.values(error.constraints ?? {}));

describe('IsCreditAmount', () => {
  it('bounds any stored amount by the balance bound (100,000,000,000 credits) by default', () => {
    expect(problems(Balance, 'available', '100000000000')).toEqual([]);
    expect(problems(Balance, 'available', '100000000000.000001')).toEqual(['available must be at most 100000000000 credits']);
    expect(problems(Balance, 'available', '99999999999999999999999')).toEqual(['available must be at most 100000000000 credits']);
  });

  it('bounds one amount taken in at an edge by the per-amount bound (1,000,000,000 credits)', () => {
    expect(problems(Grant, 'amount', '1000000000')).toEqual([]);
    expect(problems(Grant, 'amount', '1000000000.000001')).toEqual(['amount must be at most 1000000000 credits']);
    expect(problems(Grant, 'amount', '99999999999999999999999')).toEqual(['amount must be at most 1000000000 credits']);
  });

  it('still refuses numbers, negatives, zero where positive and malformed decimals with the format message', () => {
    for (const value of [5, '-1', '0', '1e3', null]) {
      expect(problems(Grant, 'amount', value)).toEqual(['amount must be a decimal string of credits with at most 6 decimals, greater than zero']);
    }
  });
});

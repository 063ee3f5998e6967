import { Param, type PipeTransform } from '@nestjs/common';
import { ContractViolation, ID_PATTERN } from '@tally/contracts';
import { GRANT_ID_PATTERN } from '@tally/shared';

const ID_RULE = 'must be 1-128 characters of letters, digits and . _ : @ -';

/** A 400 naming the offending path parameter. */
const invalidId = (field: string): ContractViolation => new ContractViolation('INVALID_PAYLOAD', [{ field, reason: ID_RULE }]);

/** An account id as every endpoint accepts it (400 naming `accountId`). */
export function checkAccountId(accountId: string): string {
  if (!ID_PATTERN.test(accountId)) throw invalidId('accountId');
  return accountId;
}

class AccountIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    return checkAccountId(value);
  }
}

/** `:accountId` path parameter, validated like every account id on the wire (400 naming `accountId`). */
export const AccountIdParam = () => Param('accountId', new AccountIdPipe());

class HoldIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!ID_PATTERN.test(value)) throw invalidId('holdId');
    return value;
  }
}

/** `:holdId` path parameter: a hold id is an idempotency key like any other (400 naming `holdId`). */
export const HoldIdParam = () => Param('holdId', new HoldIdPipe());

class IdPipe implements PipeTransform<string, string> {
  constructor(private readonly field: string) {}

  transform(value: string): string {
    if (!ID_PATTERN.test(value)) throw invalidId(this.field);
    return value;
  }
}

/** Any id path parameter (`:usageId`), validated like every id on the wire (400 naming it). */
export const IdParam = (field: string) => Param(field, new IdPipe(field));

class GrantIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!GRANT_ID_PATTERN.test(value)) {
      throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'grantId', reason: 'must be a grant id as a grant or purchase answered it (e.g. grant:<idempotencyKey>)' }]);
    }
    return value;
  }
}

/**
 * `:grantId`: `grant:<idempotencyKey>`, `purchase:<paymentReference>` and the like, whose key may itself be 128
 * characters (GRANT_ID_PATTERN), so longer than a plain id (400 naming `grantId`).
 */
export const GrantIdParam = () => Param('grantId', new GrantIdPipe());

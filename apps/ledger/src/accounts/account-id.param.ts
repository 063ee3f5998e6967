import { Param, type PipeTransform } from '@nestjs/common';
import { ContractViolation, ID_PATTERN } from '@tally/contracts';

class AccountIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!ID_PATTERN.test(value)) {
      throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'accountId', reason: 'must be 1-128 characters of letters, digits and . _ : @ -' }]);
    }
    return value;
  }
}

/** `:accountId` path parameter, validated like every account id on the wire. */
export const AccountIdParam = () => Param('accountId', new AccountIdPipe());

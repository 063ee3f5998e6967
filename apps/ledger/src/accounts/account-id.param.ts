import { Param, type PipeTransform } from '@nestjs/common';
import { ID_PATTERN } from '@tally/contracts';
import { checkAccountId } from '../history/history.params';
import { invalidParam } from '../history/history.errors';

class AccountIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    return checkAccountId(value);
  }
}

/** `:accountId` path parameter, validated like every account id on the wire (400 naming `accountId`). */
export const AccountIdParam = () => Param('accountId', new AccountIdPipe());

class HoldIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!ID_PATTERN.test(value)) throw invalidParam('holdId', 'must be 1-128 characters of letters, digits and . _ : @ -');
    return value;
  }
}

/** `:holdId` path parameter: a hold id is an idempotency key like any other (400 naming `holdId`). */
export const HoldIdParam = () => Param('holdId', new HoldIdPipe());

import { Param, type PipeTransform } from '@nestjs/common';
import { checkAccountId } from '../history/history.params';

class AccountIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    return checkAccountId(value);
  }
}

/** `:accountId` path parameter, validated like every account id on the wire (400 naming `accountId`). */
export const AccountIdParam = () => Param('accountId', new AccountIdPipe());

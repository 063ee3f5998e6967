import { ApiProperty } from '@nestjs/swagger';
import { IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { ID_PATTERN } from '@tally/contracts';
import { MAX_REASON_LENGTH } from '@tally/ledger-domain';
import { API_ID_PATTERN } from '@tally/shared';

export class VoidGrantRequest {
  @ApiProperty({ example: 'ticket-4712', description: 'Idempotency key of this void (per account)', pattern: API_ID_PATTERN })
  @Matches(ID_PATTERN, { message: 'idempotencyKey must be 1-128 characters of letters, digits and . _ : @ -' })
  idempotencyKey!: string;

  @ApiProperty({ minLength: 1, maxLength: MAX_REASON_LENGTH, example: 'granted twice by mistake', description: 'Why (audit trail); shown in the history' })
  @IsString()
  @MinLength(1)
  @MaxLength(MAX_REASON_LENGTH)
  @Matches(/\S/, { message: 'reason must not be blank' })
  reason!: string;
}

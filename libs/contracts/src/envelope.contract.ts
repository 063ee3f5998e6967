import { Type } from 'class-transformer';
import { IsInt, IsObject, IsOptional, IsString, Matches, Max, MaxLength, Min, ValidateNested } from 'class-validator';
import { BalanceSnapshotV1 } from './messages/ledger-events.v1.contract';
import { ID_PATTERN } from './validation.parser';
import { IsInstant } from './validation-rules.parser';

/**
 * An actor is an API key's name (API_KEYS, checked against this at boot): 1-64 UTF-16 code units, no control
 * characters (and, as every text of a message, well-formed: no lone surrogate).
 */
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
export const ACTOR_PATTERN = /^[^\u0000-\u001f\u007f]{1,64}$/;

/** Every Kafka message Tally produces or consumes is this JSON envelope, keyed by `accountId`. */
export class Envelope<TData extends object = Record<string, unknown>> {
  /** Unique message id; for usage this is the idempotency key (usage id). */
  @Matches(ID_PATTERN, { message: 'id must be 1-128 characters of letters, digits and . _ : @ -' })
  id!: string;

  @IsString()
  @MaxLength(64)
  type!: string;

  @IsInt()
  @Min(1)
  @Max(1000)
  version!: number;

  @Matches(ID_PATTERN, { message: 'accountId must be 1-128 characters of letters, digits and . _ : @ -' })
  accountId!: string;

  /** An instant with an offset (IsInstant): for usage the time it happened, which prices it and dates it in every read model. */
  @IsInstant()
  occurredAt!: string;

  @IsObject()
  data!: TData;

  /** ledger.events.v1 only: the event's 1-based position in its account stream (consumers dedupe by it). */
  @IsOptional()
  @IsInt()
  @Min(1)
  streamVersion?: number;

  /** ledger.events.v1 only: the account's balance right after this event (the decider's own numbers). */
  @IsOptional()
  @ValidateNested()
  @Type(() => BalanceSnapshotV1)
  balanceAfter?: BalanceSnapshotV1;

  /**
   * Optional, any topic: who caused the message, the name of the API key that sent it (usage-ingest sets it on
   * usage.events.v1; the ledger records it on the event's metadata and publishes it with the event). Absent from
   * older messages and from producers that do not set it.
   */
  @IsOptional()
  @IsString()
  @Matches(ACTOR_PATTERN, { message: 'actor must be 1-64 characters, none a control character' })
  actor?: string;
}

export interface EnvelopeOf<TType extends string, TData extends object> {
  id: string;
  type: TType;
  version: number;
  accountId: string;
  occurredAt: string;
  data: TData;
  streamVersion?: number;
  balanceAfter?: BalanceSnapshotV1;
  actor?: string;
}

import type { ParsedMessage } from '@tally/contracts';
import type { AccountCommand } from '@tally/ledger-domain';

/** When a message was produced and consumed: its Kafka record's timestamp (ms since the epoch) and the ledger's clock. */
export interface ConsumedAt {
  timestamp: string;
  receivedAt: Date;
  /** A replayed dead letter's first record's timestamp (ms since the epoch; header FIRST_PRODUCED_AT_HEADER), as sent. */
  firstProducedAt?: string;
}

/**
 * Turns one message into the account command it asks for; throws a `Rejection` for a message that can never apply.
 * `actor`, when given, is recorded instead of the envelope's: where the envelope's is the producer's own claim.
 */
export type ToCommand = (message: ParsedMessage, consumed: ConsumedAt) => { command: AccountCommand; commandKey: string; actor?: string };

/** A message that can never become a command (wrong topic, unpriceable usage): the consumer dead-letters it. */
export class Rejection extends Error {
  constructor(readonly code: string, readonly details?: unknown) {
    super(code);
  }
}

import type { ParsedMessage } from '@tally/contracts';
import type { AccountCommand } from '@tally/ledger-domain';

/** Turns one message into the account command it asks for; throws a `Rejection` for a message that can never apply. */
export type ToCommand = (message: ParsedMessage) => { command: AccountCommand; commandKey: string };

/** A message that can never become a command (wrong topic, unpriceable usage): the consumer dead-letters it. */
export class Rejection extends Error {
  constructor(readonly code: string, readonly details?: unknown) {
    super(code);
  }
}

import { backoffDelayMs } from '@tally/shared';

export interface RetrySchedule {
  baseDelayMs: number;
  maxDelayMs: number;
  /** Measured from the delivery's creation: no retry is scheduled after created + this. */
  maxRetryMs: number;
}

/** Delay before retry number `failedAttempts` (1 after the first failure): the shared equal-jitter backoff over the schedule. */
export function retryDelayMs(schedule: RetrySchedule, failedAttempts: number, random: () => number = Math.random): number {
  return backoffDelayMs(schedule.baseDelayMs, schedule.maxDelayMs, failedAttempts, random);
}

/**
 * 2xx ends it; 410 Gone (the receiver says the endpoint is gone for good) stops; every other answer is retried until the
 * delivery's retry window ends, as Stripe's and Svix's webhooks are. A refusal is mostly the receiver's to mend: a
 * verification key not yet updated after a secret rotation (401), a gateway's login (403), a route not deployed yet
 * (404), a parser fixed (400, 422); and each attempt reads the account's URL again, so a redirect (3xx: not followed)
 * ends once the account sets the address it points to.
 */
export function isRetryableHttpStatus(status: number): boolean {
  return status !== 410;
}

/** The SMTP commands whose refusal is about this email itself: its recipient, its message. */
const PER_EMAIL_COMMANDS = new Set(['RCPT TO', 'DATA']);

/**
 * SMTP: whether a failure ends the email for good. Only a 5yz reply to its recipient or its message (RCPT TO, DATA) is:
 * that email will never be accepted. A 5yz to anything else (a login refused, the sender refused, sending paused, a
 * quota) is the sending side's trouble, which an operator mends, and so is a 5yz whose enhanced code names the mail
 * system or the network (5.3.x, 5.4.x: "daily sending quota exceeded") or security and policy (5.7.x: "Relay access
 * denied" when the relay no longer knows our address or login, a DMARC or SPF refusal of our domain, "not allowed to
 * send as this sender"), which relays report at RCPT TO or DATA; so is a 552 to RCPT TO, which RFC 5321 (4.5.3.1.10)
 * asks to treat as temporary (a mailbox full). Those, 4yz replies and failures with no reply (a connection lost, a
 * deadline) are retried until the delivery's retry window ends.
 */
export function isPermanentSmtpFailure(failure: { responseCode?: number; command?: string; response?: string }): boolean {
  const { responseCode, command, response } = failure;
  if (responseCode === undefined || responseCode < 500 || responseCode >= 600) return false;
  if (!command || !PER_EMAIL_COMMANDS.has(command)) return false;
  if (responseCode === 552 && command === 'RCPT TO') return false;
  return !/^\d{3}[ -]5\.[347]\.\d{1,3}\b/.test(response ?? '');
}

/**
 * A failure's text as kept and logged: an SMTP server's reply quotes the recipient ("550 5.1.1 <alice@…>: User
 * unknown"), and a customer's address belongs in neither the logs nor the delivery log (the service logs only whether
 * an account has one).
 */
export function withoutAddresses(text: string): string {
  return text.replace(/<?[^\s<>@",;:()]+@[^\s<>@"',;:()]+>?/g, '<address>');
}

/**
 * What an attempt came to. `error` is kept in the delivery log, which the account's keys read; `detail`, when given,
 * is the whole error for the operator's log only (what the account must not see: the operator's mail server's address).
 */
export type AttemptOutcome =
  | { kind: 'delivered'; statusCode?: number }
  | { kind: 'retryable'; statusCode?: number; error: string; detail?: string }
  | { kind: 'permanent'; statusCode?: number; error: string; detail?: string };

/** When to try next after a failed attempt, or undefined when the delivery should be marked failed. */
export function nextAttemptAt(schedule: RetrySchedule, outcome: AttemptOutcome, failedAttempts: number, createdAt: Date, now: Date, random?: () => number): Date | undefined {
  if (outcome.kind !== 'retryable') return undefined;
  const at = new Date(now.getTime() + retryDelayMs(schedule, failedAttempts, random));
  return at.getTime() <= createdAt.getTime() + schedule.maxRetryMs ? at : undefined;
}

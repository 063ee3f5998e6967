import { isPermanentSmtpFailure, isRetryableHttpStatus, nextAttemptAt, retryDelayMs, withoutAddresses } from './retry.schedule';

const schedule = { baseDelayMs: 1_000, maxDelayMs: 60_000, maxRetryMs: 24 * 3_600_000 };

describe('retry schedule', () => {
  it('grows exponentially with equal jitter and is capped', () => {
    expect(retryDelayMs(schedule, 1, () => 0)).toBe(500);
    expect(retryDelayMs(schedule, 1, () => 1)).toBe(1_000);
    expect(retryDelayMs(schedule, 4, () => 0)).toBe(4_000);
    expect(retryDelayMs(schedule, 4, () => 1)).toBe(8_000);
    expect(retryDelayMs(schedule, 30, () => 1)).toBe(60_000);
    expect(retryDelayMs(schedule, 1_000, () => 0.5)).toBe(45_000);
    // A schedule starting at 0 ms stays a number however late the attempt (0 × 2^1999 is NaN).
    expect(retryDelayMs({ ...schedule, baseDelayMs: 0 }, 2_000, () => 0.5)).toBe(0);
  });

  // A receiver's refusal is mostly the receiver's to mend (a verification key not yet updated after a secret rotation,
  // a route not deployed, a gateway's login, a URL moved that the account updates): the retry reads the destination
  // again. Only 410 says the endpoint is gone for good.
  it('2xx ends it; 410 Gone stops; every other answer (3xx, 4xx, 5xx) retries', () => {
    expect([301, 308, 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503].every(isRetryableHttpStatus)).toBe(true);
    expect(isRetryableHttpStatus(410)).toBe(false);
  });

  it('SMTP: only a 5yz to the recipient or the message ends an email; refusals of the sending side and 4yz are retried', () => {
    expect(isPermanentSmtpFailure({ responseCode: 550, command: 'RCPT TO', response: '550 5.1.1 no such user' })).toBe(true);
    expect(isPermanentSmtpFailure({ responseCode: 554, command: 'DATA', response: '554 5.6.0 message refused' })).toBe(true);
    expect(isPermanentSmtpFailure({ responseCode: 451, command: 'RCPT TO', response: '451 4.3.0 try later' })).toBe(false);
    expect(isPermanentSmtpFailure({ responseCode: 535, command: 'AUTH PLAIN', response: '535 5.7.8 bad credentials' })).toBe(false);
    expect(isPermanentSmtpFailure({ responseCode: 554, command: 'MAIL FROM', response: '554 5.7.0 sending paused' })).toBe(false);
    expect(isPermanentSmtpFailure({ responseCode: 550, command: 'RCPT TO', response: '550 5.4.5 Daily sending quota exceeded' })).toBe(false);
    expect(isPermanentSmtpFailure({ responseCode: 552, command: 'DATA', response: '552-5.3.4 message too big for the system' })).toBe(false);
    expect(isPermanentSmtpFailure({ command: 'CONN' })).toBe(false);
  });

  it('SMTP: security and policy refusals at the recipient or the message (relay denied, DMARC, send-as) and a 552 to RCPT TO are retried', () => {
    expect(isPermanentSmtpFailure({ responseCode: 554, command: 'RCPT TO', response: '554 5.7.1 <bob@x.example>: Relay access denied' })).toBe(false);
    expect(isPermanentSmtpFailure({ responseCode: 550, command: 'DATA', response: '550 5.7.26 This message does not pass authentication checks' })).toBe(false);
    expect(isPermanentSmtpFailure({ responseCode: 550, command: 'DATA', response: '550-5.7.60 SMTP; Client does not have permissions to send as this sender' })).toBe(false);
    expect(isPermanentSmtpFailure({ responseCode: 552, command: 'RCPT TO', response: '552 5.2.2 mailbox full' })).toBe(false);
    expect(isPermanentSmtpFailure({ responseCode: 552, command: 'DATA', response: '552 5.2.2 mailbox full' })).toBe(true);
    expect(isPermanentSmtpFailure({ responseCode: 550, command: 'RCPT TO', response: '550 5.1.1 <bob@x.example>: User unknown' })).toBe(true);
  });

  it('an SMTP failure is kept and logged without the addresses the server quoted', () => {
    expect(withoutAddresses("Can't send mail - all recipients were rejected: 550 5.1.1 <alice.o'neil+x@mail.example.com>: User unknown"))
      .toBe("Can't send mail - all recipients were rejected: 550 5.1.1 <address>: User unknown");
    expect(withoutAddresses('450 4.2.0 bob@example.org greylisted, and carol@example.net too')).toBe('450 4.2.0 <address> greylisted, and <address> too');
    expect(withoutAddresses('connect ECONNREFUSED 127.0.0.1:587')).toBe('connect ECONNREFUSED 127.0.0.1:587');
  });

  it('stops scheduling once the retry window is over', () => {
    const created = new Date('2026-11-21T00:00:00Z');
    const retryable = { kind: 'retryable', error: 'x' } as const;
    expect(nextAttemptAt(schedule, retryable, 1, created, created, () => 0)).toEqual(new Date(created.getTime() + 500));
    const late = new Date(created.getTime() + 24 * 3_600_000 - 10_000);
    expect(nextAttemptAt(schedule, retryable, 20, created, late, () => 0)).toBeUndefined();
    expect(nextAttemptAt(schedule, { kind: 'permanent', error: 'x' }, 1, created, created)).toBeUndefined();
  });
});

import { freePort } from '@tally/testing';
import { Mailer } from '../src/delivery/email.client';
import { testConfig } from './notification.harness';

/**
 * The delivery log shows an attempt's error to the account's keys (`accounts:read`: a product's services, its support
 * tooling). A mail server the operator runs that cannot be reached is the operator's matter: its address and port are
 * the operator's network, not the account's to read. The operator's log keeps the whole error. A real closed port.
 */
describe('an email attempt to a mail server that cannot be reached', () => {
  it('is retried, its error naming no host or port; the whole error is kept for the log', async () => {
    const port = await freePort(); // nothing listens there
    const mailer = new Mailer(testConfig({ SMTP_HOST: '127.0.0.1', SMTP_PORT: String(port) }));
    const content = { notificationId: 'ntf_1', accountId: 'a', eventId: 'e', occurredAt: '2026-11-21T10:00:00Z', type: 'credits_depleted' } as const;
    const outcome = (await mailer.send('ops@example.com', content, 2_000)) as { kind: string; error?: string; detail?: string };
    expect(outcome).toMatchObject({ kind: 'retryable', error: 'the mail server could not be reached' });
    expect(outcome.detail).toContain(`127.0.0.1:${port}`);
  });
});

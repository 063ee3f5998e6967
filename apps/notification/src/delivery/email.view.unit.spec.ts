import { renderEmail } from './email.view';

const links = { billingUrl: 'https://app.example.com/billing' };
const base = { notificationId: 'ntf_1', accountId: 'acc-<1>', eventId: 'e-1', occurredAt: '2026-11-21T10:00:00Z' };

describe('email templates', () => {
  it('a low-credit email shows balance, allocation, reset date and what to do', () => {
    const email = renderEmail({ ...base, type: 'low_credit', thresholdPercent: 5, available: '4.5', allocation: '100', resetsAt: '2026-12-01T00:00:00Z' }, links);
    expect(email.subject).toBe('Your credits are below 5%');
    for (const part of ['Available: 4.5 credits', 'Monthly allocation: 100 credits', 'Allowance resets: 1 December 2026, 00:00 UTC', 'buy a credit pack or upgrade', links.billingUrl]) {
      expect(email.text).toContain(part);
    }
    expect(email.html).toContain('<td>4.5 credits</td>');
  });

  it('escapes values in HTML', () => {
    const email = renderEmail({ ...base, type: 'credits_depleted' }, links);
    expect(email.html).toContain('acc-&lt;1&gt;');
    expect(email.html).not.toContain('acc-<1>');
  });

  // The renewal is announced from CycleStarted, before the allowance pays any debt the account carried: the notice
  // cannot know how much of the allowance is left to spend, so it does not say that all of it is.
  it('a renewal names the allowance without saying all of it is available (carried usage is paid from it first)', () => {
    const { text, html } = renderEmail({ ...base, type: 'credits_renewed', allocation: '2500', periodStart: '2026-12-01T00:00:00Z', periodEnd: '2027-01-01T00:00:00Z' }, links);
    expect(text).not.toContain('is available');
    expect(text).toContain('A new billing cycle started with an allowance of 2500 credits.');
    expect(text).toContain('usage beyond your credits that your account carried from before is paid from it first');
    expect(html).toContain('allowance of 2500 credits');
  });

  it('renders renewals and receipts', () => {
    expect(renderEmail({ ...base, type: 'credits_renewed', allocation: '2500', periodStart: '2026-12-01T00:00:00Z', periodEnd: '2027-01-01T00:00:00Z' }, links).text)
      .toContain('allowance of 2500 credits');
    expect(renderEmail({ ...base, type: 'purchase_receipt', amount: '1000', paymentReference: 'pay-1' }, links).text).toContain('Payment reference: pay-1');
  });

  it('a receipt of a purchase that paid what the account owed says what was bought, what paid the debt and what was added', () => {
    const email = renderEmail({ ...base, type: 'purchase_receipt', amount: '1000', overdraftSettled: '299.5' }, links);
    expect(email.text).toContain('1000 credits were bought: 299.5 paid what the account owed and 700.5 were added to its balance.');
    expect(email.text).toContain('Credits bought: 1000 credits\nPaid what the account owed: 299.5 credits\nAdded to the balance: 700.5 credits');
    expect(renderEmail({ ...base, type: 'purchase_receipt', amount: '1000' }, links).text).toContain('Credits added: 1000 credits');
  });
});

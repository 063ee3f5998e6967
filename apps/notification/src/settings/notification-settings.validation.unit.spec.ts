import { preferenceIssues, webhookSecretIssues, webhookUrlIssues } from './notification-settings.handler';

const secretOf = (bytes: number) => `whsec_${Buffer.alloc(bytes, 9).toString('base64')}`;

describe('settings validation', () => {
  it('accepts Standard Webhooks secrets of at least 24 bytes', () => {
    expect(webhookSecretIssues(secretOf(24))).toEqual([]);
    expect(webhookSecretIssues(secretOf(32))).toEqual([]);
    expect(webhookSecretIssues(secretOf(23))).toHaveLength(1);
    expect(webhookSecretIssues('whsec_!!!notbase64!!!!!!!!!!!!!!!!!!!!!')).toHaveLength(1);
    expect(webhookSecretIssues(Buffer.alloc(32).toString('base64'))).toHaveLength(1);
  });

  it('https only; http for allowlisted hosts; no credentials', () => {
    expect(webhookUrlIssues('https://hooks.example.com/x', [])).toEqual([]);
    expect(webhookUrlIssues('http://hooks.example.com/x', [])).toEqual([expect.objectContaining({ field: 'webhookUrl' })]);
    expect(webhookUrlIssues('http://hooks.internal/x', ['hooks.internal'])).toEqual([]);
    expect(webhookUrlIssues('https://user:pw@hooks.example.com/x', [])).toEqual([expect.objectContaining({ reason: 'must not contain credentials' })]);
    expect(webhookUrlIssues('not a url', [])).toHaveLength(1);
    expect(webhookUrlIssues('https://[::1]/x', [])).toHaveLength(1);
  });

  it('names unknown types and non-boolean values', () => {
    expect(preferenceIssues({ low_credit: false, credits_renewed: true })).toEqual([]);
    expect(preferenceIssues({ sms: true, low_credit: 'off' }).map((issue) => issue.field)).toEqual(['notificationTypes.sms', 'notificationTypes.low_credit']);
  });
});

import { transactionCause } from './transaction-cause.view';

describe('transaction causes', () => {
  it('a usage names its feature and models', () => {
    expect(transactionCause({ type: 'UsageDebited', details: { feature: 'chat', models: ['gpt-4o'] } })).toEqual({ title: 'Chat', cause: 'gpt-4o', kind: 'usage' });
    expect(transactionCause({ type: 'UsageDebited', details: { feature: 'council', models: ['gpt-4o', 'claude-sonnet'] } }).cause).toBe('gpt-4o + claude-sonnet');
  });

  it('grants name the plan, the pack or the promotion', () => {
    expect(transactionCause({ type: 'CreditsGranted', details: { kind: 'allowance', source: 'plan:pro' } })).toMatchObject({ title: 'Plan allowance', cause: 'Monthly credits of plan pro' });
    expect(transactionCause({ type: 'CreditsGranted', details: { kind: 'purchased', source: 'pack:credits-1000' } })).toMatchObject({ title: 'Purchase', cause: 'Pack credits-1000', kind: 'purchase' });
    expect(transactionCause({ type: 'CreditsGranted', details: { kind: 'purchased', source: 'purchase' } }, { unit: 'karma' }).cause).toBe('Karma bought');
    expect(
      transactionCause({ type: 'CreditsGranted', details: { kind: 'promotional', source: 'promo:welcome', expiresAt: '2026-07-01T00:00:00Z' } }, { locale: 'en-GB' }).cause,
    ).toBe('welcome · expires 1 Jul 2026, 00:00');
  });

  it("a promotion's expiry is given in the page's zone (the account's), with its time: the day the credits end there", () => {
    const promo = { type: 'CreditsGranted', details: { kind: 'promotional', source: 'promo:summer', expiresAt: '2026-06-30T23:59:59-07:00' } };
    expect(transactionCause(promo, { locale: 'en-US', timeZone: 'America/Los_Angeles' }).cause).toBe('summer · expires Jun 30, 2026, 11:59 PM');
    expect(transactionCause(promo, { locale: 'en-GB', timeZone: 'Asia/Tokyo' }).cause).toBe('summer · expires 1 Jul 2026, 15:59');
  });

  it('expiries say whether the cycle reset, a plan change or an expiry date ended them', () => {
    expect(transactionCause({ type: 'CreditsExpired', details: { kind: 'allowance', reason: 'cycle-reset' } })).toMatchObject({ title: 'Cycle reset', kind: 'reset' });
    expect(transactionCause({ type: 'CreditsExpired', details: { kind: 'promotional', reason: 'expired' } })).toMatchObject({ title: 'Expired', kind: 'expiry' });
    expect(transactionCause({ type: 'CreditsExpired', details: { kind: 'allowance', reason: 'plan-change' } }).title).toBe('Plan change');
  });

  it('holds, overdraft and cycles have words too; an unknown type is spelt out', () => {
    expect(transactionCause({ type: 'HoldReleased', details: { reason: 'expired' } }).cause).toBe('The reservation timed out');
    expect(transactionCause({ type: 'OverdraftIncurred', details: {} }).kind).toBe('overdraft');
    expect(transactionCause({ type: 'OverdraftSettled', details: { grantId: 'purchase:pi-1' } }).cause).toBe('From the credits that arrived');
    expect(transactionCause({ type: 'OverdraftSettled', details: { grantId: 'allowance:c1', fromBucket: true } }).cause).toBe('From credits you already had');
    expect(transactionCause({ type: 'CycleStarted', details: { planId: 'plus' } })).toMatchObject({ title: 'New billing cycle', cause: 'Plan plus' });
    expect(transactionCause({ type: 'SomethingNew', details: {} }).title).toBe('Something New');
  });

  // The API documents a correction's reason as "shown in the history"; both fell through to the spelt-out type with
  // no cause, so purchased credits could go with no word said (found by a read-only review of the credits page).
  it("a refund and a voided grant say why, in the operator's words", () => {
    expect(transactionCause({ type: 'UsageRefunded', details: { usageId: 'u-1', refunded: '2', reason: 'Answer was cut off' } })).toEqual({
      title: 'Refund',
      cause: 'Answer was cut off',
      kind: 'correction',
    });
    expect(transactionCause({ type: 'UsageRefunded', details: { usageId: 'u-1', refunded: '2' } }).cause).toBe('Usage refunded');
    expect(transactionCause({ type: 'GrantVoided', details: { kind: 'purchased', reason: 'Payment charged back' } })).toEqual({
      title: 'Purchase cancelled',
      cause: 'Payment charged back',
      kind: 'correction',
    });
    expect(transactionCause({ type: 'GrantVoided', details: { kind: 'promotional' } })).toMatchObject({ title: 'Promotional grant cancelled', cause: 'Cancelled by support' });
    expect(transactionCause({ type: 'GrantVoided', details: { kind: 'allowance', reason: 'Granted twice' } }).title).toBe('Allowance cancelled');
  });
});

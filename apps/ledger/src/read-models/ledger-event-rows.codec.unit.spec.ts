import { ContractViolation, type Envelope } from '@tally/contracts';
import { AccountStream } from '../../test/history/account-stream.fixtures';
import { asLedgerEnvelope, projectBatch, transactionRow, usageRecordRow, type LedgerEnvelope } from '@tally/ledger-read-models';

const ledger = (envelope: Envelope<object>): LedgerEnvelope => asLedgerEnvelope(envelope);

describe('ledger event → read-model rows', () => {
  const stream = new AccountStream('acct-1');
  const opened = stream.opened();
  const cycle = stream.cycleStarted('c-1', '2025-03-01T00:00:00.000Z', '2025-04-01T00:00:00.000Z', '100');
  const allowance = stream.granted('allowance', '100', 'g-allowance');
  const purchase = stream.granted('purchased', '10.5', 'g-pack', { paymentReference: 'pay-1' });
  const council = stream.usage({
    usageId: 'u-council',
    occurredAt: '2025-03-02T10:00:00.000Z',
    lines: [
      { model: 'gpt-4o', amount: '1.000001', inputTokens: 100, outputTokens: 50 },
      { model: 'claude', amount: '2', inputTokens: 10, outputTokens: 5 },
    ],
  });
  const threshold = stream.thresholdCrossed(20);
  const expired = stream.expired('allowance', 'g-allowance');
  const hold = stream.holdPlaced('h-1', '3');
  const released = stream.holdReleased('h-1', '3');
  const overdraft = stream.overdraftIncurred('u-council', '0.5');

  it('signs grants as credits and keeps the kind and payment reference', () => {
    expect(transactionRow(ledger(purchase))).toEqual({
      accountId: 'acct-1',
      streamVersion: 4,
      eventId: 'acct-1:4',
      type: 'CreditsGranted',
      amount: '10500000',
      balanceAfter: '110500000',
      occurredAt: purchase.occurredAt,
      details: { kind: 'purchased', grantId: 'g-pack', bucketId: 'g-pack', source: 'purchase', paymentReference: 'pay-1' },
      actor: null,
    });
    expect(transactionRow(ledger(allowance))?.details).toMatchObject({ kind: 'allowance' });
  });

  it('keeps the actor the event was published with (the API key that sent the command), null without one', () => {
    expect(transactionRow({ ...ledger(purchase), actor: 'support-tool' })?.actor).toBe('support-tool');
    expect(transactionRow(ledger(purchase))?.actor).toBeNull();
  });

  it('signs usage, expiry and holds as debits, releases as credits', () => {
    expect(transactionRow(ledger(council))).toMatchObject({ type: 'UsageDebited', amount: '-3000001', balanceAfter: '107499999' });
    expect(transactionRow(ledger(council))?.details).toEqual({
      usageId: 'u-council', feature: 'council', models: ['gpt-4o', 'claude'], price: '3.000001', overdraft: '0', rateCardVersion: '2025-03',
    });
    expect(transactionRow(ledger(expired))).toMatchObject({ type: 'CreditsExpired', amount: '-96999999' });
    expect(transactionRow(ledger(hold))).toMatchObject({ type: 'HoldPlaced', amount: '-3000000' });
    expect(transactionRow(ledger(released))).toMatchObject({ type: 'HoldReleased', amount: '3000000' });
  });

  it('records cycle starts and overdraft as transactions without an amount', () => {
    expect(transactionRow(ledger(cycle))).toMatchObject({ type: 'CycleStarted', amount: null, details: { cycleId: 'c-1', allocation: '100' } });
    expect(transactionRow(ledger(overdraft))).toMatchObject({ type: 'OverdraftIncurred', amount: null, details: { overdraft: '0.5' } });
  });

  it('leaves out events that move no money', () => {
    expect(transactionRow(ledger(opened))).toBeUndefined();
    expect(transactionRow(ledger(threshold))).toBeUndefined();
  });

  it('turns a council debit into one usage record with one line per model, sorted by model', () => {
    expect(usageRecordRow(ledger(council))).toEqual({
      accountId: 'acct-1', usageId: 'u-council', streamVersion: 5, occurredAt: '2025-03-02T10:00:00.000Z', feature: 'council',
      models: 'gpt-4o+claude', inputTokens: '110', outputTokens: '55', images: 0, resolution: null, videoSeconds: 0, amount: '3000001', rateCardVersion: '2025-03',
      lines: [
        { model: 'claude', amount: '2000000', inputTokens: '10', outputTokens: '5', refunded: '0' },
        { model: 'gpt-4o', amount: '1000001', inputTokens: '100', outputTokens: '50', refunded: '0' },
      ],
    });
    expect(usageRecordRow(ledger(purchase))).toBeUndefined();
  });

  it('sorts a usage\'s lines by code point, as PostgreSQL\'s COLLATE "C" does (not by UTF-16 code unit)', () => {
    const models = ['\u{1F916}-bot', '\uFFFD-model', 'gpt-4o'];
    const usage = new AccountStream('acct-2', '2025-03-01T00:00:00.000Z', false);
    usage.granted('purchased', '10', 'pack');
    const debit = usage.usage({ usageId: 'u-unicode', occurredAt: '2025-03-02T10:00:00.000Z', lines: models.map((model) => ({ model, amount: '1' })) });
    expect(usageRecordRow(ledger(debit))?.lines.map((line) => line.model)).toEqual(['gpt-4o', '\uFFFD-model', '\u{1F916}-bot']);
  });

  it('keeps one balance per account (the newest) and the cycle start of its cycle', () => {
    const batch = projectBatch([council, cycle, allowance, purchase, council].map(ledger));
    expect(batch.balances).toHaveLength(1);
    expect(batch.balances[0]).toMatchObject({ streamVersion: 5, cycleId: 'c-1', cycleStart: '2025-03-01T00:00:00.000Z', available: '107499999' });
    expect(batch.transactions.map((row) => row.streamVersion)).toEqual([5, 2, 3, 4]);
    expect(batch.usageRecords).toHaveLength(1);
  });

  it('refuses envelopes without stream version or balance', () => {
    const { streamVersion: _v, ...withoutVersion } = council;
    expect(() => asLedgerEnvelope(withoutVersion as Envelope<object>)).toThrow(ContractViolation);
    const { balanceAfter: _b, ...withoutBalance } = council;
    expect(() => asLedgerEnvelope(withoutBalance as Envelope<object>)).toThrow(/balanceAfter/);
  });
});
